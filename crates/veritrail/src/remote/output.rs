//! Shared output: [`Out`], the standard output writer that ends quietly on a closed pipe,
//! and the text helpers every command uses ([`table`], [`shorten`], [`plural`]).

use std::io::{BufWriter, Write};

use anyhow::Context;

/// Standard output, locked and buffered for the whole command, flushed when dropped. A
/// closed pipe (`| head`) ends the output quietly instead of failing the command.
pub(super) struct Out {
    stdout: BufWriter<std::io::StdoutLock<'static>>,
    closed: bool,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out").field("closed", &self.closed).finish()
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = self.stdout.flush();
    }
}

impl Out {
    pub(super) fn new() -> Self {
        Self {
            stdout: BufWriter::new(std::io::stdout().lock()),
            closed: false,
        }
    }

    /// Whether standard output was closed by its reader.
    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends what was written so far (for output that comes over time).
    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.stdout.flush() {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(err) => Err(err).context("cannot write to standard output"),
        }
    }

    pub(super) fn line(&mut self, text: &str) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        match writeln!(self.stdout, "{text}") {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(err) => Err(err).context("cannot write to standard output"),
        }
    }
}

/// Left-aligned columns separated by two spaces.
pub(super) fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` on one line (tabs and line breaks as spaces), cut to `max_chars` with `…`.
pub(super) fn shorten(text: &str, max_chars: usize) -> String {
    let flat = text.replace(['\n', '\r', '\t'], " ");
    if flat.chars().count() <= max_chars {
        return flat;
    }
    let mut short: String = flat.chars().take(max_chars - 1).collect();
    short.push('…');
    short
}

/// `1 noun`, or `n nouns`.
pub(super) fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
