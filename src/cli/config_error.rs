//! A `--config` file that is not valid TOML for a training configuration, reported on one line.

use std::path::Path;

/// `FILE: line L, column C: MESSAGE (expected a tweedie TOML config, see examples/*.toml)`, the line and
/// column (1-based) of the start of the offending span, and the parser's message with its line breaks
/// joined by `; ` (toml's messages for syntax errors span several lines).
pub fn one_line(path: &Path, text: &str, err: &toml::de::Error) -> anyhow::Error {
    let place = err.span().map_or_else(String::new, |span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        format!("line {line}, column {column}: ")
    });
    let message: Vec<&str> = err.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    anyhow::anyhow!(
        "{}: {place}{} (expected a tweedie TOML config, see examples/*.toml)",
        path.display(),
        message.join("; ")
    )
}
