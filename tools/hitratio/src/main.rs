//! `make hitratio`: see the crate docs (src/lib.rs) and docs/hitratio.md.
//!
//! Usage:
//!   hitratio [--traces DIR] [--out DOCS_DIR] [--jobs N] [--max-requests N]
//!       every trace of DIR and the synthetic workloads; writes docs/hitratio.md
//!       with --out (what `make hitratio` runs)
//!   hitratio --trace FILE [--trace FILE ...] [--format F] [--capacities N,N,...]
//!            [--jobs N] [--max-requests N]
//!       only the traces named (what `make hitratio-trace TRACE=FILE` runs)
//!
//!   --traces        the trace files and their README (default: $HITRATIO_TRACES,
//!                   else ../shared/traces beside the repository)
//!   --out           writes DOCS_DIR/hitratio.md and DOCS_DIR/hitratio/<trace>.svg
//!                   (default: print only; not with --trace)
//!   --trace         a trace file, gzip-compressed or not, of any name
//!   --format        how --trace files encode keys: oltp (alias arc), lines
//!                   (alias lirs), u64be (alias corda); default: the traces
//!                   README's format for a file it lists, else sniffed from the
//!                   first 64 KiB (and printed)
//!   --capacities    the cache sizes to replay at, in entries (default:
//!                   250,500,...,2000, the README's)
//!   --jobs          replays run in parallel (default: the available cores)
//!   --max-requests  refuse a trace of more requests (default 2^30)
//!
//! A trace listed in a README.md beside it is compared with that README's anchors;
//! any other trace with the exact LRU only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hitratio::anchors::{self, AnchorTable};
use hitratio::replay::{self, percent};
use hitratio::report::{self, Row, WorkloadResult};
use hitratio::trace::{self, Format};
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

struct Args {
    traces: PathBuf,
    out: Option<PathBuf>,
    jobs: usize,
    /// `--trace`: replay only these files.
    files: Vec<PathBuf>,
    format: Option<Format>,
    capacities: Option<Vec<usize>>,
    max_requests: u64,
}

/// A positive count of `what` (a capacity, a number of jobs or requests).
fn positive<T: std::str::FromStr<Err = std::num::ParseIntError> + Default + PartialEq>(
    what: &str,
    value: &str,
) -> Result<T, String> {
    let n: T = value
        .trim()
        .parse()
        .map_err(|e| format!("{what} {value:?}: {e}"))?;
    if n == T::default() {
        return Err(format!("{what} {value:?}: must be at least 1"));
    }
    Ok(n)
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        traces: trace::default_dir(),
        out: None,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        files: Vec::new(),
        format: None,
        capacities: None,
        max_requests: trace::DEFAULT_MAX_REQUESTS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--traces" => args.traces = value()?.into(),
            "--out" => args.out = Some(value()?.into()),
            "--jobs" => args.jobs = positive("--jobs", &value()?)?,
            "--trace" => args.files.push(value()?.into()),
            "--format" => args.format = Some(value()?.parse()?),
            "--capacities" => {
                let list = value()?;
                let capacities = list
                    .split(',')
                    .map(|c| positive("--capacities: capacity", c))
                    .collect::<Result<Vec<usize>, _>>()?;
                args.capacities = Some(capacities);
            }
            "--max-requests" => args.max_requests = positive("--max-requests", &value()?)?,
            _ => {
                return Err(format!(
                    "unknown argument {arg:?} (see src/main.rs for usage)"
                ))
            }
        }
    }
    if args.files.is_empty() {
        if args.format.is_some() {
            return Err(
                "--format applies to --trace files only (a directory's traces are \
                        read in the README's formats, or sniffed)"
                    .into(),
            );
        }
    } else if args.out.is_some() {
        return Err(
            "--out writes the project's docs/hitratio.md, which covers every trace \
                    of --traces and the synthetic workloads: not with --trace"
                .into(),
        );
    }
    Ok(args)
}

/// The anchor tables of the README.md in `dir`, if it has one: none (and a note
/// why) when it has none or it does not parse, unless `required`.
fn readme_anchors(dir: &Path, required: bool) -> Result<Vec<AnchorTable>, String> {
    let path = dir.join("README.md");
    let parsed = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e}", path.display()))
        .and_then(|readme| anchors::parse(&readme).map_err(|e| format!("{}: {e}", path.display())));
    match parsed {
        Ok(tables) => Ok(tables),
        Err(e) if required => Err(e),
        Err(_) if !path.exists() => Ok(Vec::new()),
        Err(e) => {
            println!("note: no anchors ({e})");
            Ok(Vec::new())
        }
    }
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
    let mut description = source;
    if !t.read_as.ends_with("(the traces README)") {
        description.push_str(&format!(", read as {}", t.read_as));
    }
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

/// The workloads of `--trace`: each file, compared with the anchors of a
/// README.md beside it that lists it.
fn named_traces(args: &Args) -> Result<Vec<Workload>, String> {
    let capacities = args.capacities.clone().unwrap_or(TRACE_CAPACITIES.to_vec());
    let mut out = Vec::new();
    for path in &args.files {
        let t = trace::load(path, args.format, args.max_requests)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tables = readme_anchors(dir, false)?;
        out.push(trace_workload(
            t,
            path.display().to_string(),
            &tables,
            &capacities,
        ));
    }
    Ok(out)
}

fn workloads(args: &Args) -> Result<Vec<Workload>, String> {
    if !args.files.is_empty() {
        return named_traces(args);
    }
    let tables = readme_anchors(&args.traces, true)?;
    let mut traces = trace::load_dir(&args.traces, args.max_requests)?;
    match trace::mixed(&traces) {
        Some(mixed) => traces.push(mixed),
        None => println!("note: no mixed workload: it needs trace_vaultservice.gz and loop.gz"),
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
        out.push(trace_workload(t, source, &tables, &capacities));
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
        for _ in 0..threads.min(jobs.len()) {
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
    if let Err(e) = run() {
        eprintln!("hitratio: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let started = Instant::now();
    let workloads = workloads(&args)?;
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
        println!(
            "== {} ({} requests; replay time summed over capacities: mapcache {:.2}s, exact LRU {:.2}s)",
            result.name,
            result.requests,
            mapcache_time.as_secs_f64(),
            lru_time.as_secs_f64()
        );
        println!("   {}", result.description);
        print!("{}", result.text_table());
        for line in result.summary() {
            println!("  {line}");
        }
        println!();
        results.push(result);
    }
    println!("== overall");
    for line in report::overall(&results) {
        println!("  {line}");
    }

    if let Some(out) = &args.out {
        let plots = out.join("hitratio");
        std::fs::create_dir_all(&plots).map_err(|e| format!("{}: {e}", plots.display()))?;
        for result in &results {
            plot::write_svg(result, &plots.join(format!("{}.svg", result.name)))?;
        }
        let doc = out.join("hitratio.md");
        std::fs::write(&doc, report::markdown(&results, COMMAND))
            .map_err(|e| format!("{}: {e}", doc.display()))?;
        println!("  wrote {} and {}/*.svg", doc.display(), plots.display());
    }
    let invalid = results.iter().any(|r| !r.invalid.is_empty());
    println!(
        "  time: {:.2}s in all ({:.2}s loading and generating the workloads; {} replays on {} threads)",
        started.elapsed().as_secs_f64(),
        loaded.as_secs_f64(),
        jobs.len(),
        args.jobs
    );
    if invalid {
        return Err(
            "invalid run: mapcache did not behave as a bounded cache (see INVALID above)".into(),
        );
    }
    Ok(())
}
