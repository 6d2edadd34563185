//! What the benchmarks share: their command line (`--smoke`, `--films N`, `--mode M`) and a
//! port for a node that is configured before it starts.

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

/// A port nothing listens on now, for a node whose address goes into another peer's config
/// (nginx) before it starts.
pub fn unclaimed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}
