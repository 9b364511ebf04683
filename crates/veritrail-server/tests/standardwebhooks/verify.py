"""Verifies webhook deliveries with the official Standard Webhooks library.

The webhook tests (tests/it/receiver.rs) run this with the Python of target/test-venv (see
requirements.txt beside this file) as a second, independent check of veritrail's
signatures.

Input, on stdin: one JSON object per line,

    {"secret": "whsec_...", "id": "<webhook-id>", "timestamp": "<webhook-timestamp>",
     "signature": "<webhook-signature>", "body_b64": "<the raw body, standard base64>"}

Output, on stdout: one JSON object per input line, in the same order,

    {"ok": true}   or   {"ok": false, "error": "<why the library refused it>"}

Every check goes through the library's public `Webhook(secret).verify(body, headers)`, which
also refuses a `webhook-timestamp` more than 5 minutes away from the current time: the tests
verify deliveries seconds after they were sent, and a refusal for that reason says so.

`verify.py --version` prints the library's version (and fails if it cannot be imported).
"""

import base64
import json
import sys
import time
from importlib.metadata import version

from standardwebhooks import Webhook, WebhookVerificationError

# The library's tolerance, in seconds (private to it; only used to explain a refusal).
TOLERANCE = 5 * 60


def check(request):
    body = base64.b64decode(request["body_b64"], validate=True)
    headers = {
        "webhook-id": request["id"],
        "webhook-timestamp": request["timestamp"],
        "webhook-signature": request["signature"],
    }
    try:
        Webhook(request["secret"]).verify(body, headers, json_parse=False)
    except WebhookVerificationError as err:
        error = str(err)
        try:
            age = time.time() - float(request["timestamp"])
        except ValueError:
            age = None
        if age is not None and abs(age) > TOLERANCE:
            when = f"{int(age)} s old" if age > 0 else f"{int(-age)} s in the future"
            error += f" (it is {when}; the library accepts {TOLERANCE} s either way of now)"
        return {"ok": False, "error": error}
    except Exception as err:  # a malformed header or body makes the library raise others
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    return {"ok": True}


def main():
    if sys.argv[1:] == ["--version"]:
        print(version("standardwebhooks"))
        return 0
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(check(json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
