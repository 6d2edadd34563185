//! What the benchmarks share: their command line (`--smoke`, `--films N`, `--mode M`, `--spc`) and
//! starting the release binary on a configuration.

/// The benchmark's command line.
pub struct BenchArgs {
    /// A short run that checks the benchmark still works (CI), not a measurement.
    pub smoke: bool,
    /// `--mode`: one mode instead of all.
    pub mode: Option<String>,
    films: Option<u64>,
    /// `--seconds`: the measuring window of the pipeline benchmark's line modes (the records
    /// benchmark, which shares this file, has none).
    #[allow(dead_code)]
    seconds: Option<u64>,
    /// `--spc`: the pipeline benchmark's links watch `thickness_um` with SPC (subgroups of 5).
    #[allow(dead_code)]
    pub spc: bool,
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
            seconds: value("--seconds").and_then(|n| n.parse().ok()),
            spc: args.iter().any(|a| a == "--spc"),
        }
    }

    /// `--seconds`, or `full`.
    #[allow(dead_code)]
    pub fn seconds(&self, full: u64) -> u64 {
        self.seconds.unwrap_or(full)
    }

    /// `--films`, or 2,000 for a smoke run, or `full`.
    pub fn films(&self, full: u64) -> u64 {
        self.films.unwrap_or(if self.smoke { 2_000 } else { full })
    }
}

/// Writes `settings` to `config` and starts the release binary on it (logging errors only).
pub fn start_filmgate(
    settings: &filmgate::config::Settings,
    config: &std::path::Path,
) -> std::process::Child {
    std::fs::write(config, toml::to_string(settings).unwrap()).unwrap();
    // FILMGATE_BENCH_BIN: another build to compare with (A/B runs in one session).
    let binary = std::env::var_os("FILMGATE_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_filmgate").into());
    std::process::Command::new(binary)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the filmgate binary starts")
}
