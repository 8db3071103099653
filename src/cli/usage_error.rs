//! Command-line usage errors on one line, like every other error of the command.

use clap::error::ErrorKind;

/// The first paragraph of clap's message joined on one line (`unexpected argument '--x' found`,
/// `invalid value 'c' for '--form <FORM>' [possible values: a, b]`) with a pointer to `--help`, instead of
/// clap's several lines of usage and tips.
/// Help and version requests are printed by clap and exit as clap does.
pub fn one_line(err: clap::Error) -> anyhow::Error {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let text = err.render().to_string();
    let paragraph: Vec<&str> = text.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
    let joined = paragraph.join(" ");
    anyhow::anyhow!("{} (see --help)", joined.strip_prefix("error: ").unwrap_or(&joined))
}
