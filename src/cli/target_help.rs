//! Help texts for the `--target` syntax, shown after `--help`.

/// Help text for the target syntax, for CLI `--help`.
pub(crate) const TARGET_HELP: &str = "\
Targets (Gaussian mixtures with exact scores):
  gmm2d                                 fixed 2-D mixture, 3 rotated anisotropic components (0.5/0.3/0.2)
  gmm:dim=D[,components=K][,seed=S]     random mixture in R^D: weights ~ Dirichlet(3), means ~ N(0, 4I),
                                        covariances Q diag(l) Q^T, l ~ logU(0.05, 0.5); K=4, S=0 by default
  gauss:dim=D[,cond=C][,seed=S]         zero-mean Gaussian, random rotation, eigenvalues log-spaced in
                                        [1/C, 1]; C=10, S=0 by default
  D in 1..=4096, K in 1..=1024, C in [1, 1e12] (beyond, 1/C is below f64 rounding of 1), S a u64.";

/// Help text for the `uci:` target syntax.
pub(crate) const UCI_HELP: &str = "\
UCI datasets (density estimation on real data; shipped inside the binary, see `tweedie data list`):
  uci:redwine[=PATH]      Wine Quality, red          (data set uci-redwine)
  uci:whitewine[=PATH]    Wine Quality, white        (data set uci-whitewine)
  uci:parkinsons[=PATH]   Parkinsons Telemonitoring  (data set uci-parkinsons)
  PATH, if given, is the file (or a folder holding it); else the data directory, else the shipped copy.";

/// The help after `tweedie train --help`: every kind of `--target`.
pub(crate) fn train_help() -> String {
    format!(
        "{TARGET_HELP}\n\n{UCI_HELP}\n\nImage sets (pixels in [0, 1]; see `tweedie data list`):\n  \
         mnist|fashion-mnist|digits[:train|test][=DIR]\n\nYour data: csv:PATH or npy:PATH (one point per row)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_mentions_every_family_and_key() {
        for word in ["gmm2d", "gmm:", "gauss:", "dim", "components", "seed", "cond"] {
            assert!(TARGET_HELP.contains(word), "{word}");
        }
        for word in ["uci:redwine", "uci:whitewine", "uci:parkinsons"] {
            assert!(UCI_HELP.contains(word) && train_help().contains(word), "{word}");
        }
    }
}
