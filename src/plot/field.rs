//! `Field`: values of a function sampled on a regular 2-D grid, the input of heatmaps and density plots.

use super::error::PlotError;

/// Values `f(x_i, y_j)` on the regular grid `x_i = x0 + i (x1 - x0) / (nx - 1)`,
/// `y_j = y0 + j (y1 - y0) / (ny - 1)`, stored `values[j * nx + i]` (x fastest, `j = 0` at the bottom).
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    nx: usize,
    ny: usize,
    x_range: (f64, f64),
    y_range: (f64, f64),
    values: Vec<f64>,
}

/// Checks that `(lo, hi)` is a finite, non-empty range.
pub(crate) fn check_range(axis: &'static str, (lo, hi): (f64, f64)) -> Result<(), PlotError> {
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok(())
    } else {
        Err(PlotError::BadRange { axis, lo, hi })
    }
}

impl Field {
    /// A field from grid values (NaN allowed: drawn grey).
    ///
    /// # Errors
    /// [`PlotError::FieldSize`] unless `values.len() == nx * ny` with `nx, ny >= 1`, and
    /// [`PlotError::BadRange`] unless each range is finite with `lo < hi`.
    pub fn new(
        nx: usize,
        ny: usize,
        x_range: (f64, f64),
        y_range: (f64, f64),
        values: Vec<f64>,
    ) -> Result<Self, PlotError> {
        if nx == 0 || ny == 0 || nx.checked_mul(ny) != Some(values.len()) {
            return Err(PlotError::FieldSize { nx, ny, found: values.len() });
        }
        check_range("x", x_range)?;
        check_range("y", y_range)?;
        Ok(Self { nx, ny, x_range, y_range, values })
    }

    /// A field sampling `f(x, y)` on the grid.
    ///
    /// # Errors
    /// As [`Field::new`].
    pub fn from_fn(
        nx: usize,
        ny: usize,
        x_range: (f64, f64),
        y_range: (f64, f64),
        mut f: impl FnMut(f64, f64) -> f64,
    ) -> Result<Self, PlotError> {
        check_range("x", x_range)?;
        check_range("y", y_range)?;
        let mut values = Vec::with_capacity(nx.saturating_mul(ny));
        for j in 0..ny {
            for i in 0..nx {
                values.push(f(grid(x_range, nx, i), grid(y_range, ny, j)));
            }
        }
        Self::new(nx, ny, x_range, y_range, values)
    }

    /// `(x0, x1)`.
    pub fn x_range(&self) -> (f64, f64) {
        self.x_range
    }

    /// `(y0, y1)`.
    pub fn y_range(&self) -> (f64, f64) {
        self.y_range
    }

    /// The values, `values[j * nx + i]`.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The value at the grid point nearest to `(x, y)`, or `None` outside the field's rectangle.
    pub fn nearest(&self, x: f64, y: f64) -> Option<f64> {
        let u = (x - self.x_range.0) / (self.x_range.1 - self.x_range.0);
        let v = (y - self.y_range.0) / (self.y_range.1 - self.y_range.0);
        if !((0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v)) {
            return None;
        }
        let i = (u * (self.nx - 1) as f64).round() as usize;
        let j = (v * (self.ny - 1) as f64).round() as usize;
        Some(self.values[j * self.nx + i])
    }
}

/// The `k`-th of `n` equally spaced points spanning `range` (its start when `n = 1`).
/// The points of an `nx x ny` grid over the ranges, in the order of [`Field::values`] (x fastest).
pub fn grid_points(nx: usize, ny: usize, x_range: (f64, f64), y_range: (f64, f64)) -> Vec<[f64; 2]> {
    (0..ny).flat_map(|j| (0..nx).map(move |i| [grid(x_range, nx, i), grid(y_range, ny, j)])).collect()
}

fn grid((lo, hi): (f64, f64), n: usize, k: usize) -> f64 {
    if n <= 1 {
        lo
    } else {
        lo + (hi - lo) * k as f64 / (n - 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_layout_and_nearest_lookup_agree() {
        let f = Field::from_fn(5, 3, (-2.0, 2.0), (0.0, 1.0), |x, y| x * 100.0 + y).unwrap();
        assert_eq!(f.values()[0], -200.0);
        assert_eq!(f.values()[4], 200.0);
        assert_eq!(f.values()[14], 201.0);
        let points = grid_points(5, 3, (-2.0, 2.0), (0.0, 1.0));
        assert!(points.iter().zip(f.values()).all(|(p, v)| p[0] * 100.0 + p[1] == *v));
        assert_eq!(f.nearest(0.9, 0.3), Some(100.5));
        assert_eq!(f.nearest(-2.0, 1.0), Some(-199.0));
        assert_eq!(f.nearest(2.1, 0.5), None);
        assert_eq!(f.nearest(f64::NAN, 0.5), None);
    }

    #[test]
    fn invalid_sizes_and_ranges_are_errors() {
        assert!(matches!(
            Field::new(2, 2, (0.0, 1.0), (0.0, 1.0), vec![0.0; 3]),
            Err(PlotError::FieldSize { nx: 2, ny: 2, found: 3 })
        ));
        assert!(matches!(Field::new(0, 0, (0.0, 1.0), (0.0, 1.0), vec![]), Err(PlotError::FieldSize { .. })));
        let err = Field::new(1, 1, (1.0, 1.0), (0.0, 1.0), vec![0.0]).unwrap_err();
        assert!(matches!(err, PlotError::BadRange { axis: "x", .. }));
        assert_eq!(err.to_string(), "x range [1, 1] (expected finite bounds with lo < hi)");
        assert!(matches!(
            Field::from_fn(2, 2, (0.0, 1.0), (0.0, f64::NAN), |_, _| 0.0),
            Err(PlotError::BadRange { axis: "y", .. })
        ));
    }

    #[test]
    fn single_point_field_covers_its_rectangle() {
        let f = Field::new(1, 1, (0.0, 1.0), (0.0, 1.0), vec![7.0]).unwrap();
        assert_eq!(f.nearest(0.99, 0.01), Some(7.0));
    }

    #[test]
    fn from_fn_example() {
        use crate::plot::Field;
        let f = Field::from_fn(3, 2, (0.0, 1.0), (-1.0, 1.0), |x, y| x + 10.0 * y).unwrap();
        assert_eq!(f.values(), &[-10.0, -9.5, -9.0, 10.0, 10.5, 11.0]);
    }
}
