//! Concurrency: many threads sharing one `Index` agree with a model, and readers running
//! through an `IndexHandle` while new builds are published (symlink swaps, old build
//! directories deleted under them) never see an error or a mix of two builds, and pick
//! up the last build.

use breachdex::Catalog;
use breachdex::{Asset, HashMode, Salt};
use breachdex::{BuildOptions, MIN_MEMORY_BUDGET, build_index};
use breachdex::{Index, OpenOptions, Query};
use breachdex::{IndexHandle, publish_symlink};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const NOW: i64 = 1_800_000_000;
const EMAILS: usize = 120;
const USERNAMES: usize = 70;

/// The model: identity → the (source, password) pairs of its records.
#[derive(Default)]
struct Model {
    emails: BTreeMap<String, BTreeSet<(u32, String)>>,
    usernames: BTreeMap<String, BTreeSet<(u32, String)>>,
}

/// Writes `records` per source for build `version` into `dir` and builds `out`.
/// Record `i` of source `s`: e-mail `user{i % EMAILS}@example.com`, username
/// `name{i % USERNAMES}` (every third record has none), password `v{version}-s{s}-{i}`.
fn build(dir: &Path, out: &Path, version: u32, records: usize, mode: HashMode, salt: Option<&Salt>) -> Model {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut model = Model::default();
    let mut sources = Vec::new();
    for s in 1..=3u32 {
        let mut text = String::new();
        for i in 0..records {
            let email = format!("user{}@example.com", (i + s as usize * 7) % EMAILS);
            let username = (i % 3 != 0).then(|| format!("name{}", (i * s as usize) % USERNAMES));
            let password = format!("v{version}-s{s}-{i}");
            let line = serde_json::json!({"email": email, "username": username, "password": password});
            text.push_str(&line.to_string());
            text.push('\n');
            model.emails.entry(email).or_default().insert((s, password.clone()));
            if let Some(u) = username {
                model.usernames.entry(u).or_default().insert((s, password));
            }
        }
        let name = format!("s{s}.jsonl");
        std::fs::write(dir.join(&name), text).unwrap();
        sources.push(serde_json::json!({"id": s, "name": format!("source-{s}"), "date": format!("2024-0{s}-01"),
            "files": [{"path": name}]}));
    }
    let catalog_path = dir.join("catalog.json");
    std::fs::write(&catalog_path, serde_json::json!({ "sources": sources }).to_string()).unwrap();
    let options = BuildOptions {
        hash_mode: mode,
        salt: salt.cloned(),
        memory_budget: MIN_MEMORY_BUDGET,
        threads: Some(1),
        rejects_path: Some(dir.join("rejects.jsonl")),
        source_date_epoch: Some(1_700_000_000 + i64::from(version)),
        ..BuildOptions::default()
    };
    build_index(&Catalog::load(&catalog_path).unwrap(), out, &options).unwrap();
    model
}

/// The (source, password) pairs the index returns for rows.
fn read(index: &Index, rows: impl Iterator<Item = u64>) -> BTreeSet<(u32, String)> {
    rows.map(|row| {
        let record = index.record(row).unwrap();
        let password = record.get(Asset::PasswordPlaintext).unwrap().unwrap().to_owned();
        (record.row().source_id, password)
    })
    .collect()
}

/// A small deterministic generator per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One random operation on `index`, checked against `model`; returns what it checked.
fn checked_op(index: &Index, model: &Model, rng: &mut Rng) -> &'static str {
    let spell = |text: &str, rng: &mut Rng| match rng.next(3) {
        0 => text.to_owned(),
        1 => text.to_uppercase(),
        _ => format!("  {text}\t"),
    };
    match rng.next(5) {
        0 | 1 => {
            let i = rng.next(EMAILS + 10);
            let email = format!("user{i}@example.com");
            let got = read(index, index.lookup_email(&spell(&email, rng)).unwrap());
            assert_eq!(got, model.emails.get(&email).cloned().unwrap_or_default(), "{email}");
            "email"
        }
        2 => {
            let i = rng.next(USERNAMES + 10);
            let name = format!("name{i}");
            let got = read(index, index.lookup_username(&spell(&name, rng)).unwrap());
            assert_eq!(got, model.usernames.get(&name).cloned().unwrap_or_default(), "{name}");
            "username"
        }
        3 => {
            let i = rng.next(EMAILS);
            let email = format!("user{i}@example.com");
            let query = spell(&email, rng);
            let result = index.check(&Query::Email(&query), breachdex::UnixTime::from_seconds(NOW)).unwrap();
            let expected = model.emails.get(&email).cloned().unwrap_or_default();
            let sources: BTreeSet<u32> = expected.iter().map(|(s, _)| *s).collect();
            assert_eq!(result.total_breaches, sources.len());
            let records: u64 = result.breaches.iter().map(|b| b.records).sum();
            assert_eq!(records, expected.len() as u64);
            "check"
        }
        _ => {
            // Records by row id: each one is some record of the model.
            let row = rng.next(index.len() as usize) as u64;
            let record = index.record(row).unwrap();
            let email = record.get(Asset::Email).unwrap().unwrap();
            let password = record.get(Asset::PasswordPlaintext).unwrap().unwrap();
            assert!(model.emails[email].contains(&(record.row().source_id, password.to_owned())));
            assert_eq!(record.document_id().len(), 36);
            "record"
        }
    }
}

#[test]
fn many_threads_share_one_index() {
    let dir = tempfile::tempdir().unwrap();
    let salt = Salt::new(b"concurrency-test-salt-0123456789".to_vec()).unwrap();
    for (mode, salt) in [(HashMode::Plain, None), (HashMode::Xxh3_64, Some(&salt))] {
        let work = dir.path().join(mode.name());
        let out = work.join("index");
        let model = Arc::new(build(&work, &out, 0, 400, mode, salt));
        let index = Index::open(&out, &OpenOptions { salt: salt.cloned(), populate: false }).unwrap();
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (index, model, barrier) = (index.clone(), Arc::clone(&model), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                    let mut counts: HashMap<&str, u64> = HashMap::new();
                    barrier.wait();
                    for _ in 0..3_000 {
                        *counts.entry(checked_op(&index, &model, &mut rng)).or_default() += 1;
                    }
                    counts
                })
            })
            .collect();
        for w in workers {
            let counts = w.join().unwrap();
            assert!(counts.len() == 4, "every kind of operation ran: {counts:?}");
        }
    }
}

/// Readers that run continuously through a handle while builds are published.
#[test]
fn readers_run_through_repeated_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let builds = dir.path().join("builds");
    let versions = 5u32;
    let mut models = Vec::new();
    let mut build_ids = HashMap::new();
    for v in 0..versions {
        let out = builds.join(format!("v{v}"));
        // Different data per version: more records each time, passwords name the version.
        models.push(build(
            &dir.path().join(format!("dumps-{v}")),
            &out,
            v,
            150 + 40 * v as usize,
            HashMode::Plain,
            None,
        ));
        let id = Index::open(&out, &OpenOptions::default()).unwrap().manifest().build_id.clone();
        build_ids.insert(id, v);
    }
    assert_eq!(build_ids.len(), versions as usize, "every build has its own id");
    let models = Arc::new(models);
    let build_ids = Arc::new(build_ids);
    let current = dir.path().join("current");
    publish_symlink(Path::new("builds/v0"), &current).unwrap();
    let handle = Arc::new(IndexHandle::open(&current, OpenOptions::default()).unwrap());
    assert!(!handle.refresh().unwrap(), "nothing new published");

    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let reader_count = 4;
    let latest: Arc<Vec<AtomicU32>> = Arc::new((0..reader_count).map(|_| AtomicU32::new(u32::MAX)).collect());
    let readers: Vec<_> = (0..reader_count)
        .map(|t| {
            let (handle, models, ids) = (Arc::clone(&handle), Arc::clone(&models), Arc::clone(&build_ids));
            let (stop, lookups, latest) = (Arc::clone(&stop), Arc::clone(&lookups), Arc::clone(&latest));
            std::thread::spawn(move || {
                let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (t as u64 + 1));
                let mut last_version = 0;
                let mut seen = BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let snapshot = handle.current();
                    let version = ids[&snapshot.manifest().build_id];
                    assert!(version >= last_version, "went back from build {last_version} to {version}");
                    last_version = version;
                    latest[t].store(version, Ordering::Relaxed);
                    seen.insert(version);
                    // Several operations on one snapshot: all from one build, even when a
                    // swap (and the deletion of this build's directory) happens meanwhile.
                    for _ in 0..20 {
                        checked_op(&snapshot, &models[version as usize], &mut rng);
                    }
                    lookups.fetch_add(20, Ordering::Relaxed);
                }
                (last_version, seen)
            })
        })
        .collect();

    let wait_for_lookups = |n: u64| {
        let start = lookups.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(20);
        while lookups.load(Ordering::Relaxed) < start + n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while latest.iter().any(|l| l.load(Ordering::Relaxed) == u32::MAX) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_for_lookups(500);
    for v in 1..versions {
        // A broken publication (no manifest) is refused and the old build keeps serving.
        let broken = builds.join(format!("broken-{v}"));
        std::fs::create_dir_all(&broken).unwrap();
        publish_symlink(&broken, &current).unwrap();
        assert!(handle.refresh().is_err());
        assert_eq!(build_ids[&handle.build_id()], v - 1);
        wait_for_lookups(100);

        publish_symlink(Path::new(&format!("builds/v{v}")), &current).unwrap();
        assert!(handle.refresh().unwrap(), "build {v} picked up");
        assert_eq!(build_ids[&handle.build_id()], v);
        // Readers may still hold snapshots of the previous build: delete it anyway.
        std::fs::remove_dir_all(builds.join(format!("v{}", v - 1))).unwrap();
        std::fs::remove_dir_all(&broken).unwrap();
        wait_for_lookups(500);
    }
    // Every reader switches to the last build without being told (its next snapshot).
    let deadline = Instant::now() + Duration::from_secs(20);
    while latest.iter().any(|l| l.load(Ordering::Relaxed) != versions - 1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let (last, seen) = r.join().unwrap();
        assert_eq!(last, versions - 1, "readers end on the last build");
        assert!(seen.len() >= 2, "readers saw swaps: {seen:?}");
    }
    assert!(lookups.load(Ordering::Relaxed) > 0);
}

#[test]
fn watcher_picks_up_a_new_build() {
    let dir = tempfile::tempdir().unwrap();
    for v in 0..2 {
        build(&dir.path().join(format!("d{v}")), &dir.path().join(format!("v{v}")), v, 50, HashMode::Plain, None);
    }
    let current = dir.path().join("current");
    publish_symlink(&dir.path().join("v0"), &current).unwrap();
    let handle = Arc::new(IndexHandle::open(&current, OpenOptions::default()).unwrap());
    let first = handle.build_id();
    let watcher = handle.watch(Duration::from_millis(5));
    publish_symlink(&dir.path().join("v1"), &current).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.build_id() == first && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_ne!(handle.build_id(), first);
    // The watcher notes the swap just after making it.
    let mut swapped = watcher.take_swapped();
    while !swapped && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        swapped = watcher.take_swapped();
    }
    assert!(swapped);
    assert_eq!(watcher.last_error(), None);
    // A missing publication: the watcher reports it and keeps the build.
    std::fs::remove_file(&current).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while watcher.last_error().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(watcher.last_error().is_some());
    assert!(handle.current().lookup_email("user10@example.com").unwrap().next().is_some());
    drop(watcher);
}

/// The fixed keys of the update test: identities of the sample's two weeks and a miss.
const UPDATE_QUERIES: &[&str] = &[
    "user@example.com",
    "traveller@example.org",
    "globetrotter",
    "optout@example.net",
    "alice@example.net",
    "john.doe@example.com",
    "old.timer@example.org",
    "bob.smith@example.com",
    "nobody@example.com",
];

/// The check answers of `index` for [`UPDATE_QUERIES`], with its record count.
fn update_answers(index: &Index) -> Vec<String> {
    let now = breachdex::UnixTime::from_seconds(NOW);
    let mut out = vec![index.len().to_string()];
    for q in UPDATE_QUERIES {
        let r = index.check(&Query::auto(q), now).unwrap_or_else(|e| panic!("check {q}: {e}"));
        out.push(serde_json::to_value(&r).unwrap().to_string());
    }
    out
}

/// Readers (through an `IndexHandle` refreshed in a loop, and through one snapshot held
/// all along) while another thread runs `add`, `remove` and `compact` on the index:
/// every answer set is the whole answer set of one published generation (those are
/// computed by the writer right after each publish), never an error; the held snapshot
/// answers from its generation throughout (its segments are deleted under it).
#[test]
fn readers_during_adds_removes_and_compactions_see_whole_published_generations() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample");
    let dir = tmp.path().join("index");
    let options = BuildOptions { threads: Some(1), memory_budget: MIN_MEMORY_BUDGET, ..Default::default() };
    build_index(&Catalog::load(&sample.join("catalog.json")).unwrap(), &dir, &options).unwrap();
    let week2 = Catalog::load(&sample.join("week2/catalog.json")).unwrap();

    let handle = Arc::new(IndexHandle::open(&dir, OpenOptions::default()).unwrap());
    let held = handle.current();
    let first = update_answers(&held);
    // generation id -> its answers, as the writer saw them right after publishing.
    let published: Arc<std::sync::Mutex<HashMap<String, Vec<String>>>> =
        Arc::new(std::sync::Mutex::new(HashMap::from([(held.generation_id().to_string(), first.clone())])));
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(4));

    let writer = {
        let (dir, published, done, start) =
            (dir.clone(), Arc::clone(&published), Arc::clone(&done), Arc::clone(&start));
        std::thread::spawn(move || {
            start.wait();
            let add = breachdex::AddOptions {
                threads: Some(1),
                memory_budget: MIN_MEMORY_BUDGET,
                rejects_path: Some(dir.with_extension("rejects.jsonl")),
                ..Default::default()
            };
            let remove = breachdex::RemoveOptions::default();
            let compact =
                breachdex::CompactOptions { threads: Some(1), memory_budget: MIN_MEMORY_BUDGET, ..Default::default() };
            for step in 0..6 {
                match step {
                    0 => drop(breachdex::add_to_index(&dir, &week2, &add).unwrap()),
                    1 => drop(
                        breachdex::remove_from_index(
                            &dir,
                            &breachdex::RemoveTarget::Source("oldshop-2012".into()),
                            &remove,
                        )
                        .unwrap(),
                    ),
                    2 | 5 => drop(breachdex::compact_index(&dir, &compact).unwrap()),
                    3 => drop(
                        breachdex::remove_from_index(
                            &dir,
                            &breachdex::RemoveTarget::Identities(vec!["optout@example.net".into()]),
                            &remove,
                        )
                        .unwrap(),
                    ),
                    _ => drop(
                        breachdex::remove_from_index(
                            &dir,
                            &breachdex::RemoveTarget::Source("gamerforum-2019".into()),
                            &remove,
                        )
                        .unwrap(),
                    ),
                }
                let index = Index::open(&dir, &OpenOptions::default()).unwrap();
                published.lock().unwrap().insert(index.generation_id().to_string(), update_answers(&index));
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // Two readers through the handle: every answer set they saw, by generation id.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (handle, done, start) = (Arc::clone(&handle), Arc::clone(&done), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut seen: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
                loop {
                    let last = done.load(Ordering::SeqCst);
                    handle.refresh().unwrap_or_else(|e| panic!("refresh during updates: {e}"));
                    let index = handle.current();
                    seen.insert((index.generation_id().to_string(), update_answers(&index)));
                    if last {
                        return seen;
                    }
                }
            })
        })
        .collect();
    let snapshot_reader = {
        let (done, start, first) = (Arc::clone(&done), Arc::clone(&start), first.clone());
        std::thread::spawn(move || {
            start.wait();
            let mut rounds = 0u64;
            while !done.load(Ordering::SeqCst) || rounds == 0 {
                assert_eq!(update_answers(&held), first, "a held snapshot answers from its generation");
                rounds += 1;
            }
            assert_eq!(update_answers(&held), first, "a held snapshot answers from its generation after the run");
        })
    };

    writer.join().unwrap();
    snapshot_reader.join().unwrap();
    let published = published.lock().unwrap();
    assert_eq!(published.len(), 7, "the build and six published generations");
    let last_id = Index::open(&dir, &OpenOptions::default()).unwrap().generation_id().to_string();
    for reader in readers {
        let seen = reader.join().unwrap();
        for (id, answers) in &seen {
            let expected = published.get(id).unwrap_or_else(|| panic!("generation {id} was never published"));
            assert_eq!(answers, expected, "answers of generation {id}");
        }
        assert!(seen.iter().any(|(id, _)| *id == last_id), "the readers pick up the last generation");
    }
}
