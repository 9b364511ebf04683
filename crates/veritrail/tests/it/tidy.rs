//! The house rules, checked over the repository's files (in the spirit of rust-analyzer's
//! `xtask/src/tidy.rs`): the code map names every source file, every crate's layout list
//! matches its modules, handlers stay leaves, and no planning words reach code, docs or
//! messages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                // Build output, tools' caches and vendored third-party data.
                if !matches!(
                    name.as_str(),
                    "target" | "node_modules" | "testdata" | ".git" | ".schemathesis"
                ) {
                    pending.push(path);
                }
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The crates' directories (`crates/<name>`).
fn crates() -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("Cargo.toml").exists())
        .collect();
    crates.sort();
    crates
}

/// The lines of ARCHITECTURE.md's section on `crate_dir` (from its `### \`crates/<name>\``
/// heading to the next heading).
fn map_section(architecture: &str, crate_dir: &str) -> Vec<String> {
    let heading = format!("### `{crate_dir}`");
    let mut lines = architecture.lines().skip_while(|line| *line != heading);
    assert!(
        lines.next().is_some(),
        "ARCHITECTURE.md has no section {heading}"
    );
    lines
        .take_while(|line| !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The file named at the start of a code-map entry: `` - `ui/session.rs`: ... ``.
fn entry_path(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("- `")?;
    let (path, _) = rest.split_once('`')?;
    path.ends_with(".rs").then_some(path)
}

#[test]
fn the_code_map_names_every_source_file_once_and_no_file_that_is_gone() {
    let root = root();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut problems = Vec::new();
    for dir in crates() {
        let crate_dir = format!("crates/{}", dir.file_name().unwrap().to_string_lossy());
        let section = map_section(&architecture, &crate_dir);
        let src = dir.join("src");
        let sources: BTreeSet<String> = files(&src, ".rs")
            .iter()
            .map(|path| {
                path.strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let mut named = BTreeSet::new();
        for line in &section {
            if let Some(path) = entry_path(line) {
                if !named.insert(path.to_owned()) {
                    problems.push(format!("{crate_dir}: `{path}` has two entries"));
                }
                if !sources.contains(path) {
                    problems.push(format!(
                        "{crate_dir}: the map names `{path}`, which is not a file of src/"
                    ));
                }
            }
        }
        for path in sources.difference(&named) {
            problems.push(format!(
                "{crate_dir}: src/{path} has no entry (\"- `{path}`: ...\") in ARCHITECTURE.md"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The modules a file declares (`mod x;`, `pub mod x;`, `pub mod x {`), without test-only
/// ones.
fn declared_modules(text: &str) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    let mut test_only = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with("#[cfg(test)]") {
            test_only = true;
            continue;
        }
        let rest = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("pub(crate) mod "))
            .or_else(|| line.strip_prefix("mod "));
        if let Some(rest) = rest {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !test_only && !name.is_empty() {
                modules.insert(name);
            }
        }
        if !line.starts_with("#[") {
            test_only = false;
        }
    }
    modules
}

/// The lines of a file's `//! # Layout` section.
fn layout_section(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .skip_while(|line| line.trim() != "# Layout")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('#'))
        .collect()
}

/// `` `name` ``, `` [`name`] `` or `` `name.rs` `` as a module name (lower case: types
/// are not modules).
fn module_name(code: &str) -> Option<String> {
    let name = code.strip_suffix(".rs").unwrap_or(code);
    let name = name.strip_suffix('/').unwrap_or(name);
    (!name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    .then(|| name.to_owned())
}

/// The modules a layout list is about: the first name of each bullet
/// (`` - [`x`]: ... `` or `` - `x`: ... ``).
fn listed_modules(text: &str) -> BTreeSet<String> {
    layout_section(text)
        .into_iter()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("- ")?;
            let rest = rest.strip_prefix('[').unwrap_or(rest).strip_prefix('`')?;
            module_name(rest.split_once('`')?.0)
        })
        .collect()
}

/// Every module name a layout list mentions, anywhere in its bullets.
fn mentioned_modules(text: &str) -> BTreeSet<String> {
    layout_section(text)
        .into_iter()
        .flat_map(|line| line.split('`').skip(1).step_by(2))
        .filter_map(module_name)
        .collect()
}

#[test]
fn every_layout_list_names_exactly_the_modules_its_file_declares() {
    let mut problems = Vec::new();
    for dir in crates() {
        let src = dir.join("src");
        let roots = files(&src, ".rs").into_iter().filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            matches!(&*name, "lib.rs" | "main.rs" | "mod.rs")
        });
        for path in roots {
            let text = std::fs::read_to_string(&path).unwrap();
            let declared = declared_modules(&text);
            if declared.is_empty() {
                continue;
            }
            let listed = listed_modules(&text);
            let mentioned = mentioned_modules(&text);
            let shown = path.strip_prefix(root()).unwrap().display().to_string();
            for name in declared.difference(&mentioned) {
                problems.push(format!(
                    "{shown}: module `{name}` is not in the file's layout list"
                ));
            }
            for name in listed.difference(&declared) {
                problems.push(format!(
                    "{shown}: the layout list names `{name}`, which the file does not declare"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn handlers_are_leaves_and_only_the_route_table_names_them() {
    let src = root().join("crates/veritrail-server/src");
    let routes = src.join("routes");
    let handler_modules: Vec<String> = files(&routes, ".rs")
        .iter()
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|name| name != "mod")
        .collect();
    let mut problems = Vec::new();
    for path in files(&src, ".rs") {
        let text = std::fs::read_to_string(&path).unwrap();
        let shown = path.strip_prefix(&src).unwrap().display().to_string();
        let in_routes = path.starts_with(&routes);
        if path == routes.join("mod.rs") {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            let names_handler = handler_modules.iter().any(|module| {
                code.contains(&format!("routes::{module}::"))
                    || code.contains(&format!("routes::{{{module}"))
                    || (in_routes && code.contains(&format!("super::{module}")))
            });
            if names_handler {
                problems.push(format!(
                    "{shown}:{}: names a handler module: {}",
                    number + 1,
                    line.trim()
                ));
            }
            if in_routes && code.contains("super::") && !code.contains("super::*") {
                problems.push(format!(
                    "{shown}:{}: a handler module imports from routes/ (shared code belongs in a service module): {}",
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A planning word in `line`: a reference to a ticket or a planning document (`issue 6`,
/// `seed 003`, `stop #12`) rather than to what the thing is. (The former catalog ids,
/// `seed-002-...`, are names users may still send, not planning words.)
fn planning_word(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    for word in ["issue ", "issue #", "issues ", "seed ", "seeds ", "stop #"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(word) {
            let start = from + at;
            let after = start + word.len();
            let word_start = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
            let end = lower[after..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(lower.len(), |n| after + n);
            // The product documents were numbered 000 to 004; a random seed is not one.
            let digits_fit = if word.starts_with("seed") {
                end - after == 3
            } else {
                end > after
            };
            if word_start && digits_fit {
                return Some(line[start..end].to_owned());
            }
            from = after;
        }
    }
    None
}

#[test]
fn no_planning_words_in_code_docs_or_messages() {
    let root = root();
    let mut paths = Vec::new();
    for suffix in [".rs", ".md", ".toml", ".yaml", ".html", ".js", ".css"] {
        paths.extend(files(&root, suffix));
    }
    for dir in ["scripts", ".ci"] {
        paths.extend(files(&root.join(dir), ""));
    }
    let this_file = root.join("crates/veritrail/tests/it/tidy.rs");
    let mut problems = Vec::new();
    for path in paths {
        if path == this_file {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            if let Some(word) = planning_word(line) {
                problems.push(format!(
                    "{}:{}: {word:?}",
                    path.strip_prefix(&root).unwrap().display(),
                    number + 1
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "say what the thing is, not which ticket or document asked for it:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_rules_catch_what_they_are_for() {
    assert_eq!(
        planning_word("as in seed 004, admins"),
        Some("seed 004".into())
    );
    assert_eq!(planning_word("(issue 6)"), Some("issue 6".into()));
    assert_eq!(
        planning_word("the seeds 001 and 003"),
        Some("seeds 001".into())
    );
    assert_eq!(
        planning_word("formerly seed-002-audit-api; --seed 0x12; no seeds here, issue tracker"),
        None
    );
    assert_eq!(
        listed_modules(
            "//! - `init`: a command\n//! # Layout\n//! - [`routes`]: x\n//! - `ui/`: y\n//! - [`Server`]: z\n//! - `a.rs`\n//! # Errors\n//! - `b`"
        ),
        ["a", "routes", "ui"].map(String::from).into()
    );
    assert_eq!(
        mentioned_modules("//! # Layout\n//! - [`a`]: x; [`b`]: y, `c.rs`, `Type`"),
        ["a", "b", "c"].map(String::from).into()
    );
    assert_eq!(
        declared_modules("pub mod a;\nmod b;\n#[cfg(test)]\nmod tests;\npub mod c {\n"),
        ["a", "b", "c"].map(String::from).into()
    );
    assert_eq!(
        entry_path("- `ui/session.rs`: sessions"),
        Some("ui/session.rs")
    );
    assert_eq!(entry_path("- `SearchIndex`: no"), None);
}
