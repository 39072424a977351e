//! Calls from a thread-local destructor, after the library's own thread-locals
//! of that thread (its id registration, its epoch participant) were torn down:
//! every operation must work as on a live thread, in both modes, and never panic
//! (a panic in a TLS destructor aborts the process).

use std::cell::RefCell;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use mapcache::{Config, Map, Mode};

/// What the destructor saw: the thread's name in reports, then each call's outcome.
type Outcome = (String, Vec<String>);

/// Uses the map when the thread-local holding it is destroyed.
struct UsesMapOnDrop {
    map: Arc<Map>,
    report: Sender<Outcome>,
}

impl Drop for UsesMapOnDrop {
    fn drop(&mut self) {
        let map = &self.map;
        let label = mapcache::thread_label();
        let outcomes = vec![
            format!("{:?}", map.insert(b"tls-key", b"v1")),
            format!("{:?}", map.insert(b"tls-key", b"v2")),
            format!("{:?}", map.get(b"tls-key")),
            format!("{:?}", map.compare_and_swap(b"tls-key", b"v2", b"v3")),
            format!("{:?}", map.iter().count()),
            format!("{:?}", map.remove(b"tls-key")),
            format!("{:?}", map.contains_key(b"tls-key")),
        ];
        let _ = self.report.send((label, outcomes));
    }
}

std::thread_local! {
    static HOLDER: RefCell<Option<UsesMapOnDrop>> = const { RefCell::new(None) };
}

fn run(mode: Mode) -> Outcome {
    let map = Arc::new(
        Map::new(Config {
            mode,
            ..Config::default()
        })
        .unwrap(),
    );
    let (report, outcome) = channel();
    let worker = Arc::clone(&map);
    std::thread::spawn(move || {
        // Registered first, so destroyed last: after the library's thread-locals,
        // which the map calls below register (destructors run in reverse order).
        HOLDER.with(|h| {
            *h.borrow_mut() = Some(UsesMapOnDrop {
                map: Arc::clone(&worker),
                report,
            })
        });
        worker.insert(b"warm-up", b"x").unwrap();
        mapcache::set_thread_label("worker");
    })
    .join()
    .expect("the worker thread panicked");
    let outcome = outcome.recv().expect("the destructor did not report");
    assert_eq!(map.get(b"warm-up").unwrap().as_deref(), Some(&b"x"[..]));
    outcome
}

fn check(mode: Mode) {
    let (label, outcomes) = run(mode);
    // The registration is gone (the label set on the live thread no longer
    // applies): the destructor really ran after the library's thread-locals.
    assert!(
        label.starts_with("exited thread #"),
        "the destructor ran while the thread was still registered ({label}): the test proves nothing"
    );
    assert_eq!(
        outcomes,
        [
            "Ok(false)",
            "Ok(true)",
            "Ok(Some([118, 50]))",
            "Ok(Some(true))",
            "2",
            "Ok(true)",
            "Ok(false)",
        ],
        "{mode:?}"
    );
}

#[test]
fn concurrent_mode_works_from_a_tls_destructor() {
    check(Mode::Concurrent);
}

#[test]
fn exclusive_mode_works_from_a_tls_destructor() {
    check(Mode::Exclusive);
}
