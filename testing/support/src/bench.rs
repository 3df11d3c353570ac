//! What every benchmark prints the same way: the machine it ran on and
//! latency percentiles (nearest rank).

use std::time::Duration;

/// `<n> cores (<CPU model>), <m> GiB RAM`.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0);
    format!(
        "{} cores ({cpu}), {} GiB RAM",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_kb / 1024 / 1024
    )
}

fn nearest_rank<T: Copy>(sorted: &[T], percent: f64) -> Option<T> {
    let last = sorted.len().checked_sub(1)?;
    let rank = ((percent / 100.0) * last as f64).round() as usize;
    Some(sorted[rank.min(last)])
}

/// The `percent` (0–100) percentile of ascending `sorted`; NaN when empty.
pub fn percentile(sorted: &[f64], percent: f64) -> f64 {
    nearest_rank(sorted, percent).unwrap_or(f64::NAN)
}

/// The `percent` (0–100) percentile of ascending `sorted`; zero when empty.
pub fn percentile_duration(sorted: &[Duration], percent: f64) -> Duration {
    nearest_rank(sorted, percent).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 51.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(percentile_duration(&[], 99.0), Duration::ZERO);
    }
}
