//! Go's transparency-log code as an independent oracle: `tests/tlog/oracle.go` checks
//! inclusion and consistency proofs with `golang.org/x/mod/sumdb/tlog` and opens signed
//! checkpoints with `golang.org/x/mod/sumdb/note` (Debian's `golang-go` and
//! `golang-golang-x-mod-dev`, which `scripts/test` installs).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Where Debian's `golang-golang-x-mod-dev` puts the packages (GOPATH mode).
const GOPATH: &str = "/usr/share/gocode";

/// Runs the oracle over `cases` (one JSON object each, see `oracle.go`); its answer line
/// for each. `None` when Go or the packages are missing and the tools are not required.
pub(crate) fn check(cases: &[Value]) -> Option<Vec<String>> {
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tlog/oracle.go");
    let installed = Path::new(GOPATH)
        .join("src/golang.org/x/mod/sumdb/tlog")
        .is_dir();
    let child = Command::new("go")
        .args(["run", oracle.to_str().expect("a UTF-8 path")])
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOFLAGS", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) if installed => child,
        Ok(_) | Err(_) if !crate::receiver::tools_required() => {
            eprintln!(
                "note: Go or golang.org/x/mod is not installed; the check with Go's sumdb/tlog \
                 was not run (scripts/test installs golang-go and golang-golang-x-mod-dev)"
            );
            return None;
        }
        Ok(_) => panic!("{GOPATH} has no golang.org/x/mod: install golang-golang-x-mod-dev"),
        Err(err) => panic!("Go is required (CI or VERITRAIL_REQUIRE_TOOLS): {err}"),
    };
    let mut input = String::new();
    for case in cases {
        input.push_str(&case.to_string());
        input.push('\n');
    }
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("written");
    let output = child.wait_with_output().expect("go ran");
    assert!(
        output.status.success(),
        "go run oracle.go: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), cases.len(), "one answer per case: {lines:?}");
    Some(lines)
}
