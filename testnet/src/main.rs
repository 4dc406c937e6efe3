//! acta-testnet: simulations (and, to come, local networks, chaos and benchmarks) of Acta.

use std::process::ExitCode;

use acta_testnet::{
    sim::{ByzantineKind, Faults, SimConfig, Stake},
    sweep::{Choice, Sweep},
};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "acta-testnet",
    version,
    about = "Simulate, run and measure networks of Acta validators"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the deterministic consensus simulator over many seeds and check every run.
    ///
    /// Each seed runs N validators on a virtual clock over a faulty network; the checker
    /// asserts agreement, validity, commit certificates, no double-signing by honest
    /// validators and progress after the network heals. Exits 1 on any violation and prints
    /// the command that replays it.
    ///
    /// Example: acta-testnet sim --seeds 20000 --validators 7 --byzantine 2
    Sim(SimArgs),
    /// Start four validators on 127.0.0.1 and play a small city: the council registers an
    /// issuer, residents get DIDs and credentials, a sensor attests readings, a budget round
    /// closes with a Method of Equal Shares result and a second one beside it with secret
    /// ballots (tokens blind-signed by a registrar, votes from one-time ballot keys); then
    /// check that every node holds the same blocks and state roots, and stop the network.
    ///
    /// Example: acta-testnet demo --residents 40
    Demo {
        /// Folder for the validators' homes (default: a new folder under the system's
        /// temporary folder).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Residents who take part (4 to 1000).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(4..=1000))]
        residents: u32,
        /// Keep the network running at the end, for the residents' page: round 2 takes votes for a
        /// day, and so does secret round 3, whose token requests the demo's registrar answers.
        #[arg(long)]
        keep: bool,
    },
    /// Create a local network: N validator homes on 127.0.0.1 (free ports), one genesis
    /// with a 2-of-3 council and a city agency that may issue every credential, and the
    /// test keys' seeds under DIR/keys (for `acta keys import`).
    ///
    /// Example: acta-testnet init --validators 4 --dir testnet
    Init {
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value = "acta-local")]
        chain_id: String,
        /// Real hosts instead of 127.0.0.1, one validator each (comma separated IPv4
        /// addresses or DNS names): each home listens on every interface at ports 26656
        /// (p2p) and 26657 (API), the genesis names the hosts, and DIR/nodeN is copied to
        /// host N, where `actad start --home` runs it. --validators is then the number of
        /// hosts.
        #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
        hosts: Vec<String>,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Start the network's validators in the background (logs in DIR/nodeN/log).
    ///
    /// Example: acta-testnet up --dir testnet
    Up {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Stop the network's validators (SIGTERM; their stores stay).
    ///
    /// Example: acta-testnet down --dir testnet
    Down {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Each validator's state, height, round, peers and mempool; --watch redraws every
    /// second until Ctrl-C.
    ///
    /// Example: acta-testnet status --dir testnet --watch
    Status {
        #[command(flatten)]
        dir: DirArg,
        #[arg(long, conflicts_with = "output")]
        watch: bool,
        /// A table, or one JSON array (each node's name, state, height, round, peers,
        /// mempool, role, ready, stalled and API).
        #[arg(long, value_enum, default_value_t = acta_testnet::local::Output::Text)]
        output: acta_testnet::local::Output,
    },
    /// Print a shell completion script.
    ///
    /// Example: acta-testnet completions bash > ~/.local/share/bash-completion/completions/acta-testnet
    Completions {
        shell: clap_complete::Shell,
    },
    /// The last lines of a validator's log.
    ///
    /// Example: acta-testnet logs node2 --dir testnet --lines 50
    Logs {
        node: String,
        #[command(flatten)]
        dir: DirArg,
        #[arg(long, default_value_t = 40)]
        lines: usize,
    },
    Bench(BenchArgs),
    /// Start four validators, let them make their first block, then leave them idle for
    /// --duration seconds; print the blocks they made, how much each node's data folder
    /// grew and the CPU all four used (as a share of one core), as JSON.
    ///
    /// Example: acta-testnet idle --duration 600
    Idle {
        /// Seconds to watch the idle network.
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        duration: u64,
        /// The validators' consensus.empty_block_interval_ms (the production default).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(200..=3_600_000))]
        empty_block_interval_ms: u64,
        /// Folder for the validators' homes (default: a new temporary folder, removed after).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Inject faults into a local 4-validator network while a client submits transactions;
    /// then check that the network decides again within 30 s, that all nodes hold the same
    /// blocks and state roots, and that every transaction acknowledged as committed is in
    /// every node's ledger. Exits 1 if any check fails.
    ///
    /// Example: acta-testnet chaos --scenario kill --cycles 8
    Chaos {
        /// kill (SIGKILL and restart), pause (SIGSTOP and SIGCONT), wipe (delete a
        /// validator's data and resync it), partition (2|2 splits that must stall and 1|3
        /// splits where the three go on, each healed), equivocate (a validator double-signs
        /// prevotes and must be slashed and dropped from the set), or all of them in turn.
        #[arg(long, default_value = "all")]
        scenario: ScenarioArg,
        /// Faults per scenario, each on the next validator (equivocate has one Byzantine
        /// validator, the most four can tolerate, and ignores this).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
        cycles: u32,
        /// Folder for the validators' homes (default: a new temporary folder, removed on
        /// success).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Also keep this many transactions a second coming (DID creations through
        /// `POST /txs/batch`, spread over the nodes) through the faults; 0 for none.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=20_000))]
        rate: u32,
    },
}

/// Send pre-signed transactions of the city's kinds (ballots, DID document updates,
/// attestation batches) to a new local 4-validator network at a held rate, or at rates
/// stepped up until it saturates; report committed transactions per second, submit-to-
/// commit latency (p50, p90, p99, max), blocks per second, CPU and memory per validator and
/// refusals by reason; write them as JSON and as an SVG chart over time.
///
/// Example: acta-testnet bench --rate 5000 --duration 60
#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Hold this many transactions per second.
    #[arg(long, default_value_t = 2000, conflicts_with = "step")]
    rate: u32,
    /// Step the rate up instead: FROM:STEP:TO transactions per second, each for
    /// --duration; stops at the first step of which under 90% is committed 2 s after
    /// its end.
    #[arg(long, value_name = "FROM:STEP:TO")]
    step: Option<String>,
    /// Seconds at the rate (per step when stepping).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Shares of each kind, in parts.
    #[arg(long, default_value = "ballot=40,did=30,attest=30")]
    mix: acta_testnet::bench::Mix,
    /// Residents who vote or update their DIDs (half each).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(16..=100_000))]
    residents: u32,
    /// Sensors that attest.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    devices: u32,
    /// Folder for the results: bench.json and bench.svg.
    #[arg(long, default_value = "bench")]
    out: std::path::PathBuf,
    /// Folder for the validators' homes (default: a new temporary folder, removed after).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// The validators keep the state of every height (storage.mode = "archive").
    #[arg(long, conflicts_with = "retain_heights")]
    archive: bool,
    /// The validators keep the state of this many latest heights (storage.mode = "pruned";
    /// their default is 100,000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(acta_node::config::RETAIN_HEIGHTS_MIN..))]
    retain_heights: Option<u64>,
    /// The validators' state-tree node cache, in MiB (`storage.tree_cache_mib`; their
    /// default is 192; 0 for none).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=65_536))]
    tree_cache_mib: Option<usize>,
    /// Threads of the validators' HTTP API (`rpc.threads`; their default is 1; 0 serves
    /// the API on the thread of the node's consensus loop).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(0..=acta_node::config::RPC_THREADS_MAX as u64))]
    api_threads: Option<usize>,
    /// The validators' `consensus.min_height_ms`: when only transactions wait, a height
    /// starts at most this often (their default is 30; 0 starts it as soon as the last is
    /// committed).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=acta_node::config::MIN_HEIGHT_MS_MAX))]
    min_height_ms: Option<u64>,
    /// After the load, wipe the last validator, start it with `actad start --state-sync`
    /// and report how long it took to restore the state and catch up.
    #[arg(long)]
    state_sync: bool,
    /// The most transactions a block may hold (the validators' `block.max_txs`; a slow
    /// height may otherwise take the whole backlog).
    #[arg(long, default_value_t = acta_ledger::block::BLOCK_TXS_MAX,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=acta_ledger::block::BLOCK_TXS_MAX as u64))]
    block_max_txs: usize,
}

/// Where a local network lives.
#[derive(clap::Args, Debug)]
struct DirArg {
    /// The network's folder, made by `acta-testnet init`.
    #[arg(long, default_value = "testnet")]
    dir: std::path::PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScenarioArg {
    Kill,
    Pause,
    Wipe,
    Partition,
    Equivocate,
    All,
}

#[derive(clap::Args, Debug)]
struct SimArgs {
    /// Number of validators (4 to 31).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// How stake is spread: equal, or unequal (1 to 10 each, drawn from the seed).
    #[arg(long, value_enum, default_value_t = StakeArg::Equal)]
    stake: StakeArg,
    /// Number of Byzantine validators (those of least power; less than a third of it).
    #[arg(long, default_value_t = 0)]
    byzantine: usize,
    /// What Byzantine validators do; `mixed` cycles through all kinds by seed.
    #[arg(long, value_enum, default_value_t = KindArg::Mixed)]
    byzantine_kind: KindArg,
    /// Network faults before healing: none, lossy, partition, crash, chaos, or mixed (all in
    /// turn by seed).
    #[arg(long, value_enum, default_value_t = FaultsArg::Mixed)]
    faults: FaultsArg,
    /// Number of seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    seed_start: u64,
    /// Heights every honest validator must decide in each run.
    #[arg(long, default_value_t = 3)]
    heights: u64,
    /// Threads to run seeds on (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StakeArg {
    Equal,
    Unequal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    Equivocate,
    ConflictingProposer,
    Silent,
    InvalidProposer,
    Vanishing,
    Mixed,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FaultsArg {
    None,
    Lossy,
    Partition,
    Crash,
    Chaos,
    Mixed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim(args),
        Command::Bench(args) => bench(args),
        Command::Idle {
            duration,
            empty_block_interval_ms,
            dir,
        } => {
            let temporary = dir.is_none();
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("acta-idle-{}", std::process::id()))
            });
            let result = acta_testnet::idle::run(
                &dir,
                std::time::Duration::from_secs(duration),
                empty_block_interval_ms,
            );
            if temporary {
                let _ = std::fs::remove_dir_all(&dir);
            }
            report(result.and_then(|r| {
                acta_node::outln!("{}", serde_json::to_string_pretty(&r)?);
                Ok(())
            }))
        }
        Command::Chaos {
            scenario,
            cycles,
            dir,
            rate,
        } => chaos(scenario, cycles, dir, rate),
        Command::Init {
            validators,
            chain_id,
            hosts,
            dir,
        } => report(
            acta_testnet::local::init(&dir.dir, validators, &chain_id, &hosts).map(|m| {
                if hosts.is_empty() {
                    acta_node::outln!(
                        "wrote {} validators of {} in {}; start them with: acta-testnet up --dir {}",
                        m.nodes.len(),
                        m.chain_id,
                        dir.dir.display(),
                        dir.dir.display()
                    );
                } else {
                    for (node, host) in m.nodes.iter().zip(&hosts) {
                        acta_node::outln!(
                            "{}: copy {} to {host} and run actad start --home <that folder> there",
                            node.name,
                            node.home.display()
                        );
                    }
                }
            }),
        ),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "acta-testnet",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Up { dir } => report(acta_testnet::local::up(&dir.dir)),
        Command::Down { dir } => report(acta_testnet::local::down(&dir.dir)),
        Command::Status { dir, watch, output } => {
            report(acta_testnet::local::status(&dir.dir, watch, output))
        }
        Command::Logs { node, dir, lines } => {
            report(acta_testnet::local::logs(&dir.dir, &node, lines))
        }
        Command::Demo {
            dir,
            residents,
            keep,
        } => {
            let temporary = dir.is_none();
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("acta-demo-{}", std::process::id()))
            });
            match acta_testnet::demo::run(&dir, residents, keep) {
                Ok(()) => {
                    if temporary {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("acta-testnet demo: {e:#}");
                    eprintln!("   the validators' logs are in {}/node*/log", dir.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acta-testnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    use acta_testnet::bench::{self, Load, Options};
    let each = std::time::Duration::from_secs(args.duration);
    let load = match &args.step {
        None => Load::Hold {
            rate: args.rate,
            duration: each,
        },
        Some(s) => {
            let parts: Vec<Option<u32>> = s.split(':').map(|p| p.parse().ok()).collect();
            match parts.as_slice() {
                [Some(from), Some(step), Some(to)] if from <= to && *step > 0 => Load::Step {
                    from: *from,
                    step: *step,
                    to: *to,
                    each,
                },
                _ => {
                    eprintln!("acta-testnet bench: --step {s:?}: expected FROM:STEP:TO, whole numbers, FROM ≤ TO, STEP > 0");
                    return ExitCode::from(2);
                }
            }
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("acta-testnet bench: creating {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let temporary = args.dir.is_none();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("acta-bench-{}", std::process::id())));
    let opts = Options {
        dir: dir.clone(),
        load,
        mix: args.mix,
        residents: args.residents,
        devices: args.devices,
        json: args.out.join("bench.json"),
        chart: args.out.join("bench.svg"),
        storage: {
            let mut storage = match (args.archive, args.retain_heights) {
                (true, _) => Some(acta_node::config::StorageConfig {
                    mode: acta_node::config::StorageMode::Archive,
                    ..Default::default()
                }),
                (false, Some(n)) => Some(acta_node::config::StorageConfig {
                    mode: acta_node::config::StorageMode::Pruned,
                    retain_heights: n,
                    ..Default::default()
                }),
                (false, None) => None,
            };
            if let Some(mib) = args.tree_cache_mib {
                storage.get_or_insert_with(Default::default).tree_cache_mib = mib;
            }
            storage
        },
        api_threads: args.api_threads,
        min_height_ms: args.min_height_ms,
        state_sync: args.state_sync,
        block_max_txs: args.block_max_txs,
    };
    let command: Vec<String> = std::env::args().collect();
    let result = bench::run(&opts, &command.join(" "));
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(report) => {
            bench::print_summary(&report);
            acta_node::outln!(
                "   wrote {} and {}",
                opts.json.display(),
                opts.chart.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("acta-testnet bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn chaos(
    scenario: ScenarioArg,
    cycles: u32,
    dir: Option<std::path::PathBuf>,
    rate: u32,
) -> ExitCode {
    use acta_testnet::chaos::{self, Scenario};
    let scenarios: Vec<Scenario> = match scenario {
        ScenarioArg::Kill => vec![Scenario::Kill],
        ScenarioArg::Pause => vec![Scenario::Pause],
        ScenarioArg::Wipe => vec![Scenario::Wipe],
        ScenarioArg::Partition => vec![Scenario::Partition],
        ScenarioArg::Equivocate => vec![Scenario::Equivocate],
        ScenarioArg::All => Scenario::ALL.to_vec(),
    };
    let base = dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("acta-chaos-{}", std::process::id())));
    let mut failed = false;
    for s in scenarios {
        let home = base.join(s.name());
        match chaos::run(&home, s, cycles, rate) {
            Ok(r) => acta_node::outln!(
                "   {}: {} faults, {} acknowledged and {} unacknowledged submissions, {} blocks, recovery {:.1} s",
                r.scenario.name(),
                r.cycles,
                r.acknowledged,
                r.unacknowledged,
                r.height,
                r.recovery.as_secs_f64()
            ),
            Err(e) => {
                eprintln!("acta-testnet chaos {}: FAILED: {e:#}", s.name());
                eprintln!("   the validators' logs are in {}/node*/log", home.display());
                failed = true;
            }
        }
    }
    if failed {
        return ExitCode::FAILURE;
    }
    if dir.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    ExitCode::SUCCESS
}

fn sim(args: SimArgs) -> ExitCode {
    let mut base = SimConfig::new(args.validators);
    base.stake = match args.stake {
        StakeArg::Equal => Stake::Equal,
        StakeArg::Unequal => Stake::Unequal,
    };
    base.byzantine = args.byzantine;
    base.heights = args.heights;
    let byzantine_kind = match args.byzantine_kind {
        KindArg::Equivocate => Choice::One(ByzantineKind::Equivocate),
        KindArg::ConflictingProposer => Choice::One(ByzantineKind::ConflictingProposer),
        KindArg::Silent => Choice::One(ByzantineKind::Silent),
        KindArg::InvalidProposer => Choice::One(ByzantineKind::InvalidProposer),
        KindArg::Vanishing => Choice::One(ByzantineKind::Vanishing),
        KindArg::Mixed => Choice::Mixed,
    };
    let faults = match args.faults {
        FaultsArg::Mixed => Choice::Mixed,
        one => {
            let name = format!("{one:?}").to_lowercase();
            Choice::One(
                Faults::NAMED
                    .iter()
                    .find(|(n, _)| *n == name)
                    .expect("every named mix")
                    .0,
            )
        }
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let sweep = Sweep {
        base,
        byzantine_kind,
        faults,
        seed_start: args.seed_start,
        seeds: args.seeds,
        threads,
    };
    let summary = match sweep.run() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("acta-testnet sim: {e}");
            return ExitCode::from(2);
        }
    };
    let mut bad_seeds = std::collections::BTreeSet::new();
    for (seed, violation) in summary.violations() {
        acta_node::outln!("VIOLATION seed {seed}: {violation}");
        if bad_seeds.insert(seed) {
            acta_node::outln!("  replay: {}", sweep.replay_command(seed));
        }
    }
    let rounds: Vec<String> = summary
        .rounds
        .iter()
        .map(|(r, n)| {
            format!(
                "round {r}: {n} ({:.1}%)",
                100.0 * *n as f64 / summary.heights.max(1) as f64
            )
        })
        .collect();
    acta_node::outln!(
        "seeds {} (from {}), validators {}, byzantine {}, {} threads",
        args.seeds,
        args.seed_start,
        args.validators,
        args.byzantine,
        threads
    );
    acta_node::outln!(
        "heights decided {}; decisions by round: {}",
        summary.heights,
        rounds.join(", ")
    );
    acta_node::outln!(
        "messages delivered {}, evidence reported {}",
        summary.messages,
        summary.evidence
    );
    acta_node::outln!(
        "wall time {:.2} s, {:.0} simulated heights per second",
        summary.wall_secs,
        summary.heights as f64 / summary.wall_secs.max(1e-9)
    );
    if bad_seeds.is_empty() {
        acta_node::outln!("no violations");
        ExitCode::SUCCESS
    } else {
        acta_node::outln!("{} seed(s) with violations", bad_seeds.len());
        ExitCode::FAILURE
    }
}
