//! A dense row-major matrix: the one array type of the network core (a batch is one row per point).

use super::real::Real;

/// A dense `rows x cols` matrix stored row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat<F> {
    rows: usize,
    cols: usize,
    data: Vec<F>,
}

impl<F> Default for Mat<F> {
    fn default() -> Self {
        Self { rows: 0, cols: 0, data: Vec::new() }
    }
}

impl<F: Real> Mat<F> {
    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![F::zero(); rows * cols] }
    }

    /// Wraps row-major data. Panics if `data.len() != rows * cols` (a programmer error).
    #[track_caller]
    pub fn from_vec(rows: usize, cols: usize, data: Vec<F>) -> Self {
        assert_eq!(data.len(), rows * cols, "Mat::from_vec: {rows}x{cols} needs {} values", rows * cols);
        Self { rows, cols, data }
    }

    /// Builds a matrix from a function of (row, column).
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> F) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            for j in 0..cols {
                data.push(f(i, j));
            }
        }
        Self { rows, cols, data }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[F] {
        &self.data
    }

    /// The row-major data, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [F] {
        &mut self.data
    }

    /// Consumes the matrix, returning its row-major data.
    pub fn into_vec(self) -> Vec<F> {
        self.data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[F] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutably.
    pub fn row_mut(&mut self, i: usize) -> &mut [F] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Iterates over rows.
    pub fn row_iter(&self) -> std::slice::ChunksExact<'_, F> {
        self.data.chunks_exact(self.cols.max(1))
    }

    /// Element `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> F {
        self.data[i * self.cols + j]
    }

    /// Sets element `(i, j)`.
    pub fn set(&mut self, i: usize, j: usize, v: F) {
        self.data[i * self.cols + j] = v;
    }

    /// Reshapes to `rows x cols` keeping the data (and its allocation) when the size allows; contents are
    /// unspecified afterwards. Used to reuse workspace buffers across batch sizes.
    pub fn resize(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, F::zero());
    }

    /// Fills with zeros.
    pub fn fill_zero(&mut self) {
        self.data.iter_mut().for_each(|v| *v = F::zero());
    }

    /// Converts the element type.
    pub fn cast<G: Real>(&self) -> Mat<G> {
        Mat {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|v| G::of(v.to_f64().unwrap_or(f64::NAN))).collect(),
        }
    }

    /// Rows `start..end` as a new matrix.
    pub fn slice_rows(&self, start: usize, end: usize) -> Self {
        Self::from_vec(end - start, self.cols, self.data[start * self.cols..end * self.cols].to_vec())
    }

    /// Stacks matrices of equal width vertically.
    #[track_caller]
    pub fn vstack(parts: &[&Mat<F>]) -> Self {
        let cols = parts.first().map_or(0, |p| p.cols);
        let mut data = Vec::new();
        let mut rows = 0;
        for p in parts {
            assert_eq!(p.cols, cols, "Mat::vstack: width mismatch");
            data.extend_from_slice(&p.data);
            rows += p.rows;
        }
        Self { rows, cols, data }
    }

    /// `self = alpha * a * op(b) + beta * self` with `op(b) = b` or `b^T` (`b_transposed`).
    #[track_caller]
    pub fn gemm_into(
        &mut self,
        alpha: F,
        a: &Mat<F>,
        a_transposed: bool,
        b: &Mat<F>,
        b_transposed: bool,
        beta: F,
    ) {
        let (m, k, rsa, csa) =
            if a_transposed { (a.cols, a.rows, 1, a.cols) } else { (a.rows, a.cols, a.cols, 1) };
        let (kb, n, rsb, csb) =
            if b_transposed { (b.cols, b.rows, 1, b.cols) } else { (b.rows, b.cols, b.cols, 1) };
        assert_eq!(k, kb, "gemm: inner dimensions {k} and {kb} differ");
        assert!(
            self.rows == m && self.cols == n,
            "gemm: output is {}x{}, expected {m}x{n}",
            self.rows,
            self.cols
        );
        F::gemm(m, k, n, alpha, (&a.data, rsa, csa), (&b.data, rsb, csb), beta, (&mut self.data, n, 1));
    }

    /// `a * op(b)` as a new matrix.
    pub fn matmul(a: &Mat<F>, b: &Mat<F>, b_transposed: bool) -> Self {
        let n = if b_transposed { b.rows } else { b.cols };
        let mut out = Self::zeros(a.rows, n);
        out.gemm_into(F::one(), a, false, b, b_transposed, F::zero());
        out
    }

    /// Sum of squares of all entries.
    pub fn norm_sq(&self) -> F {
        self.data.iter().map(|v| *v * *v).sum()
    }

    /// True if every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slow reference product kept beside the GEMM path, in f64.
    fn matmul_slow<F: Real>(a: &Mat<F>, b: &Mat<F>) -> Mat<f64> {
        let (a, b) = (a.cast::<f64>(), b.cast::<f64>());
        Mat::from_fn(a.rows(), b.cols(), |i, j| (0..a.cols()).map(|k| a.at(i, k) * b.at(k, j)).sum())
    }

    fn transpose<F: Real>(a: &Mat<F>) -> Mat<F> {
        Mat::from_fn(a.cols(), a.rows(), |i, j| a.at(j, i))
    }

    /// `C = 2 op(A) op(B) + C / 2` against the slow product for every transpose combination, at an
    /// `m x k x n` size (ragged sizes exercise the kernels' edge tiles).
    fn check_gemm<F: Real>(m: usize, k: usize, n: usize) {
        let a = Mat::<F>::from_fn(m, k, |i, j| F::of((i * k + j) as f64 * 0.37 % 2.0 - 1.0));
        let b = Mat::<F>::from_fn(k, n, |i, j| F::of(((i + 2 * j) as f64).sin()));
        let want = matmul_slow(&a, &b);
        let tol = 16.0 * F::EPS.to_f64().expect("finite") * k as f64;
        for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
            let aa = if at { transpose(&a) } else { a.clone() };
            let bb = if bt { transpose(&b) } else { b.clone() };
            let mut c = Mat::from_fn(m, n, |_, _| F::one());
            c.gemm_into(F::of(2.0), &aa, at, &bb, bt, F::of(0.5));
            for i in 0..m {
                for j in 0..n {
                    let got = c.at(i, j).to_f64().expect("finite");
                    let err = (got - (2.0 * want.at(i, j) + 0.5)).abs();
                    assert!(err < tol * 10.0, "{m}x{k}x{n} at={at} bt={bt} ({i},{j}): error {err}");
                }
            }
        }
    }

    #[test]
    fn gemm_matches_slow_product_for_every_transpose() {
        for (m, k, n) in [(5, 3, 4), (67, 45, 131), (130, 129, 17)] {
            check_gemm::<f64>(m, k, n);
            check_gemm::<f32>(m, k, n);
        }
    }

    /// An `m x k x n` product above `PARALLEL_GEMM_MIN_MULADDS` on a pool of `threads` threads, as bits.
    fn split_product_bits<F: Real>(threads: usize, a_transposed: bool) -> Vec<u64> {
        let (m, k, n) = (512, 256, 131);
        assert!(m * k * n >= super::super::real::PARALLEL_GEMM_MIN_MULADDS);
        let a = Mat::<F>::from_fn(m, k, |i, j| F::of(((i * 7 + j * 3) as f64).sin()));
        let a = if a_transposed { transpose(&a) } else { a };
        let b = Mat::<F>::from_fn(k, n, |i, j| F::of(((i + 5 * j) as f64 * 0.1).cos()));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool starts");
        pool.install(|| {
            let split = super::super::real::gemm_parallelism(m, k, n);
            assert_eq!(
                matches!(split, gemm::Parallelism::None),
                threads == 1,
                "{threads} threads: {split:?}"
            );
            let mut c = Mat::from_fn(m, n, |i, j| F::of((i + j) as f64 * 1e-3));
            c.gemm_into(F::of(0.7), &a, a_transposed, &b, false, F::of(0.3));
            c.as_slice().iter().map(|v| v.to_f64().expect("finite").to_bits()).collect()
        })
    }

    /// A product large enough to split across the pool gives the same bits when repeated on 2 threads,
    /// and the same bits on 1, 2 and 3 threads (gemm splits the output tiles, never the `k` sum).
    #[test]
    fn split_gemm_is_bitwise_equal_across_runs_and_thread_counts() {
        for a_transposed in [false, true] {
            let one = split_product_bits::<f32>(1, a_transposed);
            assert_eq!(
                split_product_bits::<f32>(2, a_transposed),
                split_product_bits::<f32>(2, a_transposed)
            );
            assert_eq!(split_product_bits::<f32>(2, a_transposed), one, "f32, 1 vs 2 threads");
            assert_eq!(split_product_bits::<f32>(3, a_transposed), one, "f32, 1 vs 3 threads");
            let one = split_product_bits::<f64>(1, a_transposed);
            assert_eq!(split_product_bits::<f64>(2, a_transposed), one, "f64, 1 vs 2 threads");
        }
    }
}
