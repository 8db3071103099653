//! The error of a head name that does not parse, for the second- and third-order heads alike.

/// A head name that is not one of the names of its order (`--s2`: `full`, `diag`, `lowrank:R`;
/// `--s3`: `cp:R`, `directional`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {} head `{name}` (expected {})", order_name(*order), expected(*order))]
pub struct UnknownHead {
    /// The order of the head: 2 (`s2`) or 3 (`s3`).
    pub order: usize,
    /// The name given.
    pub name: String,
}

fn order_name(order: usize) -> &'static str {
    if order == 3 {
        "third-order"
    } else {
        "second-order"
    }
}

fn expected(order: usize) -> &'static str {
    if order == 3 {
        "cp:R with R >= 1, or directional"
    } else {
        "full, diag or lowrank:R with R >= 1"
    }
}

#[cfg(test)]
mod tests {
    use crate::models::{SecondOrderHead, ThirdOrderHead};

    #[test]
    fn each_order_names_its_own_choices() {
        let e2 = "lowrank:0".parse::<SecondOrderHead>().unwrap_err().to_string();
        assert_eq!(
            e2,
            "unknown second-order head `lowrank:0` (expected full, diag or lowrank:R with R >= 1)"
        );
        let e3 = "cp".parse::<ThirdOrderHead>().unwrap_err().to_string();
        assert_eq!(e3, "unknown third-order head `cp` (expected cp:R with R >= 1, or directional)");
    }
}
