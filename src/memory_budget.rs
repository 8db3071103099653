//! Sizes checked against memory before allocating: each size a user gives (a width, a batch, a number of
//! points or chains) becomes an estimate of the bytes it needs, and a size whose estimate exceeds the
//! memory this process can get is refused with an error naming it, instead of an abort on allocation.
//!
//! Estimates are in f64, so no size, however large, overflows; they count the dominant buffers only and
//! are meant to be within a small factor of the truth, which is all a refusal of a typo needs.

/// Fallback when the operating system does not say how much memory is available.
const FALLBACK_BYTES: f64 = 8.0 * GIB;
const GIB: f64 = (1u64 << 30) as f64;

/// The most threads a `--threads` flag may ask for: far beyond any useful count, low enough that
/// spawning them cannot exhaust the system.
pub(crate) const MAX_THREADS: usize = 1024;

/// A size whose memory estimate exceeds what is available.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", refusal(what, *bytes, *available))]
pub(crate) struct MemoryError {
    /// The flags and values responsible, as the user wrote them.
    pub what: String,
    /// The estimate in bytes.
    pub bytes: f64,
    /// The bytes available.
    pub available: f64,
}

/// The message refusing `what`, whose estimate is `bytes`, when `available` bytes are available.
pub(crate) fn refusal(what: &str, bytes: f64, available: f64) -> String {
    format!(
        "{what} needs about {} of memory (an estimate), more than the {} available (expected a smaller size)",
        human(bytes),
        human(available)
    )
}

/// A byte count as `12.3 GiB`.
fn human(bytes: f64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 1024.0 {
        format!("{bytes:.1e} bytes")
    } else if unit == 0 {
        format!("{value:.0} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// The memory a command may plan to use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MemoryBudget {
    available: f64,
}

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: f64) -> Self {
        Self { available: bytes }
    }

    /// This machine's: the smaller of `MemAvailable` (`/proc/meminfo`) and the cgroup limit
    /// (`/sys/fs/cgroup/memory.max`), or 8 GiB where neither is known.
    pub fn of_this_machine() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024.0)
        });
        let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok());
        let known = [meminfo, cgroup].into_iter().flatten().fold(f64::INFINITY, f64::min);
        Self::new(if known.is_finite() { known } else { FALLBACK_BYTES })
    }

    #[cfg(test)]
    /// The bytes available.
    pub fn available(&self) -> f64 {
        self.available
    }

    /// Refuses an estimate of `bytes` above the budget, naming `what` (the flags and their values).
    ///
    /// # Errors
    /// [`MemoryError`] when `bytes` exceeds the budget or is not a finite number.
    pub fn check(&self, what: impl FnOnce() -> String, bytes: f64) -> Result<(), MemoryError> {
        if bytes <= self.available {
            Ok(())
        } else {
            Err(MemoryError { what: what(), bytes, available: self.available })
        }
    }
}

/// The size of a fully connected network `inputs -> width x depth -> outputs`, in f64 so that no size
/// overflows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NetworkSize {
    /// Inputs.
    pub inputs: f64,
    /// Hidden width.
    pub width: f64,
    /// Hidden layers.
    pub depth: f64,
    /// Outputs.
    pub outputs: f64,
}

impl NetworkSize {
    /// Weights and biases: `(n_in + 1) n_out` summed over the layers.
    pub fn params(&self) -> f64 {
        let Self { inputs, width, depth, outputs } = *self;
        if depth == 0.0 {
            (inputs + 1.0) * outputs
        } else {
            (inputs + 1.0) * width + (depth - 1.0) * (width + 1.0) * width + (width + 1.0) * outputs
        }
    }

    /// Units of all layers, inputs included.
    pub fn units(&self) -> f64 {
        self.inputs + self.depth * self.width + self.outputs
    }
}

/// Bytes to train `networks` on `rows` stacked input rows per step, each carrying `tangents` forward
/// tangents.
///
/// # Definition
/// f32 (4 bytes) for the `P` parameters six times over (weights, gradient, two Adam moments, weight
/// average, an evaluation copy) and, per row and tangent, four numbers per unit (activation, tangent and
/// their adjoints): `4 (6 P + 4 rows tangents U)`.
pub(crate) fn training_bytes(networks: &[NetworkSize], rows: f64, tangents: f64) -> f64 {
    let params: f64 = networks.iter().map(NetworkSize::params).sum();
    let units: f64 = networks.iter().map(NetworkSize::units).sum();
    4.0 * (6.0 * params + 4.0 * rows * tangents * units)
}

/// Checks a `--threads` count: at least 1 and at most [`MAX_THREADS`].
///
/// # Errors
/// A one-line message naming the flag, the value and the range.
pub(crate) fn check_threads(flag: &str, threads: usize) -> Result<(), String> {
    if (1..=MAX_THREADS).contains(&threads) {
        Ok(())
    } else {
        Err(format!("{flag} {threads}: expected a thread count in 1..={MAX_THREADS}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_refuse_absurd_sizes_and_pass_ordinary_ones() {
        let budget = MemoryBudget::new(4.0 * GIB);
        // A 2-layer width-128 network on 2-D data, batch 512: about a megabyte.
        let net = |width| NetworkSize { inputs: 2.0, width, depth: 2.0, outputs: 2.0 };
        assert_eq!(net(128.0).params(), 3.0 * 128.0 + 129.0 * 128.0 + 129.0 * 2.0);
        let ordinary = training_bytes(&[net(128.0)], 512.0, 2.0);
        assert!(ordinary > 4.0 * 17_000.0 * 6.0 && ordinary < 1e7, "{ordinary}");
        assert!(budget.check(|| "--width 128".into(), ordinary).is_ok());
        let huge = training_bytes(&[net(1e9)], 512.0, 2.0);
        let err = budget.check(|| "--width 1000000000".into(), huge).unwrap_err();
        assert!(err.to_string().starts_with("--width 1000000000 needs about "), "{err}");
        assert!(err.to_string().contains("more than the 4.0 GiB available"), "{err}");
        let overflow = training_bytes(&[net(usize::MAX as f64)], 1.0, 1.0);
        assert!(budget.check(String::new, overflow).is_err(), "sizes near usize::MAX do not wrap");
        assert!(budget.check(String::new, f64::NAN).is_err(), "an estimate that is not a number is refused");
    }

    #[test]
    fn this_machine_has_a_positive_budget_and_threads_are_bounded() {
        assert!(MemoryBudget::of_this_machine().available() > 0.0);
        assert!(check_threads("--threads", 4).is_ok());
        assert_eq!(
            check_threads("--threads", 10_000).unwrap_err(),
            "--threads 10000: expected a thread count in 1..=1024"
        );
        assert!(check_threads("--threads", 0).is_err());
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(3e30), "3.0e30 bytes");
    }
}
