//! The benchmarks' command line (`--smoke`, `--films N`, `--mode M`).

/// The benchmark's command line.
pub struct BenchArgs {
    /// A short run that checks the benchmark still works (CI), not a measurement.
    pub smoke: bool,
    /// `--mode`: one mode instead of all.
    pub mode: Option<String>,
    films: Option<u64>,
}

impl BenchArgs {
    pub fn from_env() -> BenchArgs {
        let args: Vec<String> = std::env::args().collect();
        let value = |name: &str| {
            let at = args.iter().position(|a| a == name)?;
            args.get(at + 1).cloned()
        };
        BenchArgs {
            smoke: args.iter().any(|a| a == "--smoke"),
            mode: value("--mode"),
            films: value("--films").and_then(|n| n.parse().ok()),
        }
    }

    /// `--films`, or 2,000 for a smoke run, or `full`.
    pub fn films(&self, full: u64) -> u64 {
        self.films.unwrap_or(if self.smoke { 2_000 } else { full })
    }
}
