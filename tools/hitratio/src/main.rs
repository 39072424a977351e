//! `make hitratio`: see the crate docs (src/lib.rs) and docs/hitratio.md; the
//! usage, flags, formats and limits are `hitratio --help` (src/cli.rs).
//!
//! Output goes to stdout; a failed write there (`> /dev/full`) is an error on
//! stderr and exit status 1, a closed pipe (`| head`) exit status 1 quietly.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hitratio::anchors::{self, AnchorTable, Readme};
use hitratio::cli::{self, Args, Command};
use hitratio::replay::{self, percent};
use hitratio::report::{self, Row, WorkloadResult};
use hitratio::trace;
use hitratio::{plot, synthetic};

/// The command that regenerates docs/hitratio.md, as the document states it.
const COMMAND: &str = "make hitratio";

/// The capacities of the real traces (the README's).
const TRACE_CAPACITIES: [usize; 8] = [250, 500, 750, 1000, 1250, 1500, 1750, 2000];

/// The synthetic workloads: requests over a key space, capacities 1% to 20% of it.
const SYNTHETIC_KEYS: usize = 100_000;
const SYNTHETIC_REQUESTS: usize = 1_000_000;
const SYNTHETIC_CAPACITIES: [usize; 6] = [1_000, 2_000, 5_000, 10_000, 15_000, 20_000];
const SYNTHETIC_SEED: u64 = 20_240_611;
const SCAN_EVERY: usize = 100_000;
const SCAN_LEN: usize = 20_000;
const SCAN_EXPONENT: f64 = 0.9;

/// A workload to replay at each of its capacities.
struct Workload {
    name: String,
    description: String,
    keys: Vec<u64>,
    capacities: Vec<usize>,
    anchors: Option<AnchorTable>,
}

/// One replay: a workload at one capacity, through mapcache or the exact LRU.
#[derive(Clone, Copy)]
struct Job {
    workload: usize,
    capacity: usize,
    through_mapcache: bool,
}

/// What a job found: hits, and for mapcache the outcome's details.
enum Found {
    Mapcache(replay::Outcome),
    Lru(u64),
}

/// Why a run failed: a message for stderr, or stdout could not be written.
enum Failure {
    Message(String),
    Stdout(std::io::Error),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Message(message)
    }
}

/// `writeln!` to the output, a failure to write a [`Failure::Stdout`].
macro_rules! say {
    ($out:expr) => {
        writeln!($out).map_err(Failure::Stdout)?
    };
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err(Failure::Stdout)?
    };
}

/// The README.md in `dir` (see [`anchors::beside`]), printing why it is not
/// used when it could not be.
fn readme_beside(dir: &Path, required: bool, out: &mut dyn Write) -> Result<Readme, Failure> {
    let (readme, note) = anchors::beside(dir, required)?;
    if let Some(note) = note {
        say!(out, "note: {note}");
    }
    Ok(readme)
}

/// `trace`'s anchor table among `tables`, if it has every capacity replayed;
/// else none, and the reason for the description.
fn anchors_for(
    tables: &[AnchorTable],
    trace: &str,
    capacities: &[usize],
) -> (Option<AnchorTable>, Option<String>) {
    let Some(table) = tables.iter().find(|table| table.trace == trace) else {
        return (None, Some("no published anchors".into()));
    };
    match capacities.iter().find(|c| !table.capacities.contains(c)) {
        Some(c) => (
            None,
            Some(format!("no anchors: the README has none at capacity {c}")),
        ),
        None => (Some(table.clone()), None),
    }
}

/// A real trace as a workload, with its anchors where there are some.
fn trace_workload(
    t: trace::Trace,
    source: String,
    tables: &[AnchorTable],
    capacities: &[usize],
) -> Workload {
    let (anchors, note) = anchors_for(tables, &t.name, capacities);
    let mut description = format!("{source}, read as {}", t.read_as);
    if let Some(note) = note {
        description.push_str("; ");
        description.push_str(&note);
    }
    Workload {
        name: t.name,
        description,
        keys: t.keys,
        capacities: capacities.to_vec(),
        anchors,
    }
}

/// The workloads of `--trace`: each file, read in the format a README.md
/// beside it lists it in (unless `--format` names one) and compared with that
/// README's anchors for it.
fn named_traces(args: &Args, out: &mut dyn Write) -> Result<Vec<Workload>, Failure> {
    let capacities = args.capacities.clone().unwrap_or(TRACE_CAPACITIES.to_vec());
    let options = trace::Options {
        format: args.format,
        compression: args.compression,
        max_requests: args.max_requests,
    };
    let mut workloads = Vec::new();
    for path in &args.files {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let readme = readme_beside(dir, false, out)?;
        let t = trace::load(path, &readme, &options)?;
        workloads.push(trace_workload(
            t,
            path.display().to_string(),
            &readme.tables,
            &capacities,
        ));
    }
    Ok(workloads)
}

fn workloads(args: &Args, w: &mut dyn Write) -> Result<Vec<Workload>, Failure> {
    if !args.files.is_empty() {
        return named_traces(args, w);
    }
    let readme = readme_beside(&args.traces, true, w)?;
    let tables = &readme.tables;
    let mut traces = trace::load_dir(&args.traces, &readme, args.max_requests)?;
    match trace::mixed(&traces) {
        Some(mixed) => traces.push(mixed),
        None => say!(
            w,
            "note: no mixed workload: it needs trace_vaultservice.gz and loop.gz"
        ),
    }
    let capacities = args.capacities.clone().unwrap_or(TRACE_CAPACITIES.to_vec());
    let mut out = Vec::new();
    for t in traces {
        let source = if t.name == "mixed" {
            "trace_vaultservice, then loop, then trace_vaultservice again, through the same cache"
                .to_string()
        } else {
            format!("{}.gz from {}", t.name, trace::shown(&args.traces))
        };
        out.push(trace_workload(t, source, tables, &capacities));
    }
    for exponent in [0.7, 0.9, 0.99] {
        out.push(Workload {
            name: format!("zipf-{exponent}"),
            description: format!(
                "synthetic: Zipf {exponent} over {SYNTHETIC_KEYS} keys, seed {SYNTHETIC_SEED}"
            ),
            keys: synthetic::zipf(SYNTHETIC_KEYS, exponent, SYNTHETIC_REQUESTS, SYNTHETIC_SEED),
            capacities: SYNTHETIC_CAPACITIES.to_vec(),
            anchors: None,
        });
    }
    out.push(Workload {
        name: format!("zipf-{SCAN_EXPONENT}-scans"),
        description: format!(
            "synthetic: Zipf {SCAN_EXPONENT} over {SYNTHETIC_KEYS} keys, seed {SYNTHETIC_SEED}, with a \
             one-pass scan of {SCAN_LEN} never-repeated keys after every {SCAN_EVERY} Zipf requests \
             (the scans' misses count too)"
        ),
        keys: synthetic::zipf_with_scans(
            SYNTHETIC_KEYS,
            SCAN_EXPONENT,
            SYNTHETIC_REQUESTS,
            SCAN_EVERY,
            SCAN_LEN,
            SYNTHETIC_SEED,
        ),
        capacities: SYNTHETIC_CAPACITIES.to_vec(),
        anchors: None,
    });
    Ok(out)
}

/// A job's result and the time it took, or why it failed.
type JobResult = Result<(Found, Duration), String>;

/// The threads that run `jobs` jobs with `--jobs` at `asked`: no more than jobs.
fn threads(asked: usize, jobs: usize) -> usize {
    asked.min(jobs)
}

/// Runs every job on `threads` threads; each result with the time it took.
fn run_jobs(
    workloads: &[Workload],
    jobs: &[Job],
    threads: usize,
) -> Result<Vec<(Found, Duration)>, String> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<JobResult>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..self::threads(threads, jobs.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let keys = &workloads[job.workload].keys;
                let started = Instant::now();
                let found = if job.through_mapcache {
                    replay::mapcache(keys, job.capacity)
                        .map(Found::Mapcache)
                        .map_err(|e| {
                            format!(
                                "{} at {}: mapcache: {e}",
                                workloads[job.workload].name, job.capacity
                            )
                        })
                } else {
                    Ok(Found::Lru(replay::exact_lru(keys, job.capacity)))
                };
                let found = found.map(|f| (f, started.elapsed()));
                results.lock().expect("no job panics holding it")[i] = Some(found);
            });
        }
    });
    results
        .into_inner()
        .expect("no job panics holding it")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

fn main() {
    let code = match run() {
        Ok(()) => 0,
        // A closed pipe (`| head`): the reader has what it wanted.
        Err(Failure::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 1,
        Err(Failure::Stdout(e)) => {
            let _ = writeln!(std::io::stderr(), "hitratio: writing to stdout: {e}");
            1
        }
        Err(Failure::Message(e)) => {
            let _ = writeln!(std::io::stderr(), "hitratio: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run() -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let args = match cli::parse(std::env::args_os().skip(1))? {
        Command::Help => {
            out.write_all(cli::usage().as_bytes())
                .and_then(|()| out.flush())
                .map_err(Failure::Stdout)?;
            return Ok(());
        }
        Command::Run(args) => args,
    };
    let out = &mut out;
    let started = Instant::now();
    let workloads = workloads(&args, out)?;
    let loaded = started.elapsed();
    let jobs: Vec<Job> = workloads
        .iter()
        .enumerate()
        .flat_map(|(w, workload)| {
            workload.capacities.iter().flat_map(move |&capacity| {
                [true, false].map(|through_mapcache| Job {
                    workload: w,
                    capacity,
                    through_mapcache,
                })
            })
        })
        .collect();
    let found = run_jobs(&workloads, &jobs, args.jobs)?;

    let mut results = Vec::new();
    for (w, workload) in workloads.iter().enumerate() {
        let requests = workload.keys.len() as u64;
        let mut mapcache = Vec::new();
        let mut lru = Vec::new();
        let mut overflows = Vec::new();
        let mut miscounts = Vec::new();
        let (mut mapcache_time, mut lru_time) = (Duration::ZERO, Duration::ZERO);
        for (job, (f, took)) in jobs.iter().zip(&found).filter(|(job, _)| job.workload == w) {
            match f {
                Found::Mapcache(outcome) => {
                    mapcache.push(outcome.percent());
                    mapcache_time += *took;
                    if outcome.final_entries > job.capacity {
                        overflows.push(format!("{} at {}", outcome.final_entries, job.capacity));
                    }
                    if outcome.stats_hits != outcome.hits {
                        miscounts.push(format!(
                            "{} vs {} at {}",
                            outcome.stats_hits, outcome.hits, job.capacity
                        ));
                    }
                }
                Found::Lru(hits) => {
                    lru.push(percent(*hits, requests));
                    lru_time += *took;
                }
            }
        }
        let mut invalid = Vec::new();
        if !overflows.is_empty() {
            invalid.push(format!(
                "mapcache ended holding more entries than max_entries ({}): it did not keep within \
                 its capacity, so its row is not a bounded cache's hit ratio",
                overflows.join(", ")
            ));
        }
        if !miscounts.is_empty() {
            invalid.push(format!(
                "mapcache's own stats count other hits than the harness ({})",
                miscounts.join(", ")
            ));
        }
        let anchors = workload.anchors.as_ref().map_or(Ok(Vec::new()), |table| {
            table
                .rows
                .iter()
                .map(|(name, _)| {
                    let values = workload
                        .capacities
                        .iter()
                        .map(|&c| {
                            table.value(name, c).ok_or_else(|| {
                                format!(
                                    "the README has no {name} anchor for {} at {c}",
                                    workload.name
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok::<_, String>(Row {
                        name: name.clone(),
                        values,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let result = WorkloadResult {
            name: workload.name.clone(),
            description: workload.description.clone(),
            requests: workload.keys.len(),
            capacities: workload.capacities.clone(),
            mapcache: Row {
                name: "mapcache".into(),
                values: mapcache,
            },
            lru: Row {
                name: "exact LRU".into(),
                values: lru,
            },
            anchors,
            invalid,
        };
        say!(
            out,
            "== {} ({} requests; replay time summed over capacities: mapcache {:.2}s, exact LRU {:.2}s)",
            result.name,
            result.requests,
            mapcache_time.as_secs_f64(),
            lru_time.as_secs_f64()
        );
        say!(out, "   {}", result.description);
        write!(out, "{}", result.text_table()).map_err(Failure::Stdout)?;
        for line in result.summary() {
            say!(out, "  {line}");
        }
        say!(out);
        results.push(result);
    }
    say!(out, "== overall");
    for line in report::overall(&results) {
        say!(out, "  {line}");
    }

    if let Some(dir) = &args.out {
        let plots = dir.join("hitratio");
        std::fs::create_dir_all(&plots).map_err(|e| format!("{}: {e}", plots.display()))?;
        for result in &results {
            plot::write_svg(result, &plots.join(format!("{}.svg", result.name)))?;
        }
        let doc = dir.join("hitratio.md");
        std::fs::write(&doc, report::markdown(&results, COMMAND))
            .map_err(|e| format!("{}: {e}", doc.display()))?;
        say!(
            out,
            "  wrote {} and {}/*.svg",
            doc.display(),
            plots.display()
        );
    }
    let invalid = results.iter().any(|r| !r.invalid.is_empty());
    say!(
        out,
        "  time: {:.2}s in all ({:.2}s loading and generating the workloads; {} replays on {} threads)",
        started.elapsed().as_secs_f64(),
        loaded.as_secs_f64(),
        jobs.len(),
        threads(args.jobs, jobs.len())
    );
    out.flush().map_err(Failure::Stdout)?;
    if invalid {
        return Err(Failure::Message(
            "invalid run: mapcache did not behave as a bounded cache (see INVALID above)".into(),
        ));
    }
    Ok(())
}
