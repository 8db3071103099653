//! Relative errors of estimated scores against ground truth (docs/math.md §12.1).

/// `sqrt( sum ||estimate - truth||^2 / sum ||truth||^2 )` over all entries.
///
/// # Example
/// ```
/// let e = tweedie::evaluation::relative_error(&[1.1, 2.0], &[1.0, 2.0]);
/// assert!((e - 0.1 / 5f64.sqrt()).abs() < 1e-12);
/// ```
pub fn relative_error(estimate: &[f64], truth: &[f64]) -> f64 {
    assert_eq!(estimate.len(), truth.len(), "relative_error: lengths differ");
    let err: f64 = estimate.iter().zip(truth).map(|(e, t)| (e - t) * (e - t)).sum();
    let norm: f64 = truth.iter().map(|t| t * t).sum();
    (err / norm).sqrt()
}

/// [`relative_error`] restricted to the diagonals of stacked `D x D` matrices (for diagonal heads).
pub fn diagonal_relative_error(estimate: &[f64], truth: &[f64], dim: usize) -> f64 {
    let diag = |m: &[f64]| -> Vec<f64> {
        m.chunks_exact(dim * dim).flat_map(|b| (0..dim).map(move |i| b[i * dim + i])).collect()
    };
    relative_error(&diag(estimate), &diag(truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_error_ignores_off_diagonal_entries() {
        let truth = [1.0, 5.0, 5.0, 2.0];
        let estimate = [1.0, 0.0, 0.0, 4.0];
        assert!((diagonal_relative_error(&estimate, &truth, 2) - (4.0f64 / 5.0).sqrt()).abs() < 1e-15);
        assert!((relative_error(&estimate, &truth) - (54.0f64 / 55.0).sqrt()).abs() < 1e-15);
        assert_eq!(relative_error(&truth, &truth), 0.0);
    }
}
