"""Checks OCSF events (JSON Lines on stdin) against the official OCSF schema compiled by the
official ocsf-lib (the file named by argv[1]; see README.md beside this file). Standard
library only. Prints one JSON line per event with problems and exits 1 if any has one.

What it checks, for each event:
- `class_uid` names a class of the schema, `category_uid` is that class's category,
  `activity_id` is one of the class's activities, `type_uid` is class_uid * 100 + activity_id;
- every attribute the class requires is there (attributes a profile adds are required only
  when the event lists that profile in `metadata.profiles`), recursively in every object;
- every attribute is one the class (or the object) defines: nothing unknown;
- every value has its attribute's type (strings, integers, booleans, floats, objects of the
  named object, arrays where the attribute is one), matches the type's regex, and is one
  of the attribute's enum values where it has any. `unmapped` and `json_t` values are free.
"""

import gzip
import json
import re
import sys

schema = json.load(gzip.open(sys.argv[1]))
classes = {c["uid"]: c for c in schema["classes"].values()}
objects = schema["objects"]
types = schema["types"]
categories = {name: c["uid"] for name, c in schema["categories"].items()}


def primitive(type_name):
    """The primitive a type derives from (email_t -> string_t)."""
    seen = 0
    while type_name in types and types[type_name].get("type") and seen < 10:
        type_name = types[type_name]["type"]
        seen += 1
    return type_name


def check_type(value, type_name, path, errors):
    prim = primitive(type_name)
    ok = {
        "string_t": lambda v: isinstance(v, str),
        "integer_t": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "long_t": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float_t": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean_t": lambda v: isinstance(v, bool),
        "json_t": lambda v: True,
        "object_t": lambda v: isinstance(v, dict),
    }.get(prim)
    if ok is None:
        errors.append(f"{path}: type {type_name} is unknown to this checker")
        return
    if not ok(value):
        errors.append(f"{path}: {value!r} is not a {type_name}")
        return
    regex = types.get(type_name, {}).get("regex")
    if regex and isinstance(value, str) and not re.fullmatch(regex, value):
        errors.append(f"{path}: {value!r} does not match the {type_name} pattern")


def check_attribute(value, attr, path, errors, profiles):
    values = value if attr.get("is_array") else [value]
    if attr.get("is_array") and not isinstance(value, list):
        errors.append(f"{path}: not an array")
        return
    for i, item in enumerate(values):
        item_path = f"{path}[{i}]" if attr.get("is_array") else path
        type_name = attr["type"]
        if type_name == "object_t" or path.endswith(".unmapped"):
            if not isinstance(item, dict):
                errors.append(f"{item_path}: not an object")
            continue
        if type_name in objects:
            check_object(item, objects[type_name]["attributes"], item_path, errors, profiles)
            continue
        check_type(item, type_name, item_path, errors)
        enum = attr.get("enum")
        if enum and not isinstance(item, bool) and str(item) not in enum:
            errors.append(f"{item_path}: {item!r} is not one of {sorted(enum)}")


def check_object(value, attrs, path, errors, profiles):
    if not isinstance(value, dict):
        errors.append(f"{path}: not an object")
        return
    for name, attr in attrs.items():
        profile = attr.get("profile")
        required = attr["requirement"] == "required" and (not profile or profile in profiles)
        if required and name not in value:
            errors.append(f"{path}.{name}: required, missing")
    for name, item in value.items():
        attr = attrs.get(name)
        if attr is None:
            errors.append(f"{path}.{name}: not an attribute here")
            continue
        check_attribute(item, attr, f"{path}.{name}", errors, profiles)


def check_event(event):
    errors = []
    if not isinstance(event, dict):
        return ["the event is not an object"]
    cls = classes.get(event.get("class_uid"))
    if cls is None:
        return [f"class_uid {event.get('class_uid')!r} is no class of OCSF {schema['version']}"]
    category = categories.get(cls.get("category"), 0)
    if event.get("category_uid") != category:
        errors.append(f"category_uid {event.get('category_uid')!r} is not {category}")
    activity = event.get("activity_id")
    if isinstance(activity, int) and event.get("type_uid") != cls["uid"] * 100 + activity:
        errors.append(f"type_uid {event.get('type_uid')!r} is not class_uid * 100 + activity_id")
    profiles = set((event.get("metadata") or {}).get("profiles") or [])
    check_object(event, cls["attributes"], "event", errors, profiles)
    return errors


def main():
    n_events = 0
    n_bad = 0
    for n, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        n_events += 1
        errors = check_event(json.loads(line))
        if errors:
            n_bad += 1
            print(json.dumps({"line": n, "errors": errors}))
    print(json.dumps({"events": n_events, "invalid": n_bad, "version": schema["version"]}))
    sys.exit(1 if n_bad else 0)


main()
