//! What the benchmarks share: the settings they measure in (unconstrained, and inside a cgroup
//! with the hook's own limits, 500m CPU and 128 MiB), timing (medians, the sides of a ratio
//! taken in turn), and printing each ratio with its target and the exact commands of both
//! sides, then a summary of every ratio in every setting.

#![allow(dead_code, reason = "each benchmark uses a different part")]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The hook's CPU limit, 500m: 50 ms of CPU time in every 100 ms.
const CPU_QUOTA_US: u64 = 50_000;
const CPU_PERIOD_US: u64 = 100_000;
/// The hook's memory limit.
const MEMORY_LIMIT: u64 = 128 * 1024 * 1024;

/// Where timed commands run: as they are, or inside the hook's limits.
pub(crate) struct Setting {
    /// What every line measured in this setting is labelled with.
    pub(crate) name: &'static str,
    limits: Option<Cgroup>,
    /// The same CPU limit without the memory limit: where a ratio is taken again when the
    /// memory limit kills one of its sides.
    cpu_only: Option<Box<Setting>>,
}

impl Setting {
    /// Starts `cmd` in this setting, with no input, its output discarded or (`capture`)
    /// piped to the caller.
    pub(crate) fn spawn(&self, mut cmd: Command, capture: bool) -> Child {
        let shown = describe(&cmd);
        let spawned = match &self.limits {
            None => {
                redirect(&mut cmd, capture);
                cmd.spawn()
            }
            Some(cgroup) => cgroup.spawn(cmd, capture),
        };
        spawned.unwrap_or_else(|e| panic!("cannot start {shown}: {e}"))
    }

    /// Whether a memory limit applies.
    pub(crate) fn is_memory_limited(&self) -> bool {
        self.limits.as_ref().is_some_and(|c| c.memory().is_some())
    }

    /// What the memory limit did so far (OOM kills, times the limit was hit), when limited.
    pub(crate) fn memory_events(&self) -> Option<String> {
        self.limits.as_ref().and_then(Cgroup::memory_events)
    }

    /// How many processes the kernel's OOM killer ended in this setting so far.
    pub(crate) fn oom_kills(&self) -> u64 {
        self.limits.as_ref().map_or(0, Cgroup::oom_kills)
    }

    /// The same CPU limit without the memory limit, for a ratio whose side the memory limit
    /// kills.
    pub(crate) fn cpu_only(&self) -> Option<&Setting> {
        self.cpu_only.as_deref()
    }
}

/// The settings to measure in: unconstrained, then the hook's limits when this machine lets
/// us make a cgroup; otherwise says, in the output, that the constrained set is not measured
/// and why.
pub(crate) fn settings() -> Vec<Setting> {
    let mut settings = vec![Setting {
        name: "unconstrained",
        limits: None,
        cpu_only: None,
    }];
    match (Cgroup::create(true), Cgroup::create(false)) {
        (Ok(hook), Ok(cpu)) => {
            println!(
                "limited setting: {} (cpu quota {CPU_QUOTA_US}/{CPU_PERIOD_US} us, memory {} MiB); both sides of every ratio run in it",
                hook.describe(),
                MEMORY_LIMIT / 1024 / 1024
            );
            println!(
                "  where the memory limit kills a side, that ratio is taken again under the CPU limit alone: {}",
                cpu.describe()
            );
            settings.push(Setting {
                name: "500m CPU, 128 MiB",
                limits: Some(hook),
                cpu_only: Some(Box::new(Setting {
                    name: "500m CPU, no memory limit",
                    limits: Some(cpu),
                    cpu_only: None,
                })),
            });
        }
        (Err(why), _) | (_, Err(why)) => println!(
            "NOT MEASURED under the hook's limits (500m CPU, 128 MiB): {why}; only the unconstrained set follows"
        ),
    }
    settings
}

/// A cgroup of this process's own, with the hook's CPU limit and, optionally, its memory
/// limit; removed when dropped.
enum Cgroup {
    /// cgroup v1: a directory in the `cpu` and one in the `memory` hierarchy. Commands start
    /// from a thread of this process that sits in both (v1 places threads one by one), so a
    /// child is born inside, with nothing added to its time.
    V1 {
        spawner: Spawner,
        cpu: PathBuf,
        memory: Option<PathBuf>,
        _dirs: Dirs,
    },
    /// cgroup v2: one directory. A thread cannot sit in a memory cgroup of its own there, so
    /// each command enters through `sh`, which writes its pid and execs the command: the same
    /// ~1 ms added to both sides of a ratio.
    V2 {
        dir: PathBuf,
        memory: bool,
        _dirs: Dirs,
    },
}

impl Cgroup {
    fn create(memory: bool) -> Result<Cgroup, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let name = format!(
            "preflight-bench-{}-{}",
            std::process::id(),
            if memory { "hook" } else { "cpu" }
        );
        let v1 = |controller: &str| own_dir_v1(&mountinfo, &own, controller);
        match (v1("cpu"), v1("memory")) {
            (Some(cpu), Some(parent)) => {
                Cgroup::create_v1(&cpu, memory.then_some(parent.as_path()), &name)
            }
            _ => match own_dir_v2(&mountinfo, &own) {
                Some(dir) => Cgroup::create_v2(&dir, memory, &name),
                None => Err("no cgroup v1 cpu and memory hierarchies and no cgroup v2 with both controllers are mounted".into()),
            },
        }
    }

    fn create_v1(
        cpu_parent: &Path,
        memory_parent: Option<&Path>,
        name: &str,
    ) -> Result<Cgroup, String> {
        let mut dirs = Dirs(Vec::new());
        let cpu = dirs.make(cpu_parent, name)?;
        write(&cpu.join("cpu.cfs_period_us"), CPU_PERIOD_US)?;
        write(&cpu.join("cpu.cfs_quota_us"), CPU_QUOTA_US)?;
        let mut tasks = vec![cpu.join("tasks")];
        let memory = match memory_parent {
            Some(parent) => {
                let memory = dirs.make(parent, name)?;
                write(&memory.join("memory.limit_in_bytes"), MEMORY_LIMIT)?;
                // With swap accounting, memory and swap together: swapping is no way round it.
                let memsw = memory.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, MEMORY_LIMIT)?;
                }
                tasks.push(memory.join("tasks"));
                Some(memory)
            }
            None => None,
        };
        let spawner = Spawner::start(tasks)?;
        Ok(Cgroup::V1 {
            spawner,
            cpu,
            memory,
            _dirs: dirs,
        })
    }

    fn create_v2(parent: &Path, memory: bool, name: &str) -> Result<Cgroup, String> {
        // A child gets the controllers its parent delegates; a parent that holds processes
        // itself may refuse (the "no internal processes" rule), and that is reported.
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+cpu +memory");
        let mut dirs = Dirs(Vec::new());
        let dir = dirs.make(parent, name)?;
        write(
            &dir.join("cpu.max"),
            format!("{CPU_QUOTA_US} {CPU_PERIOD_US}"),
        )?;
        if memory {
            write(&dir.join("memory.max"), MEMORY_LIMIT)?;
            let swap = dir.join("memory.swap.max");
            if swap.exists() {
                write(&swap, 0)?;
            }
        }
        Ok(Cgroup::V2 {
            dir,
            memory,
            _dirs: dirs,
        })
    }

    /// The directory whose files tell what the memory limit did.
    fn memory(&self) -> Option<&Path> {
        match self {
            Cgroup::V1 { memory, .. } => memory.as_deref(),
            Cgroup::V2 { dir, memory, .. } => memory.then_some(dir.as_path()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Cgroup::V1 {
                cpu,
                memory: Some(memory),
                ..
            } => format!("cgroup v1 {} and {}", cpu.display(), memory.display()),
            Cgroup::V1 { cpu, .. } => format!("cgroup v1 {}", cpu.display()),
            Cgroup::V2 { dir, .. } => format!(
                "cgroup v2 {} (each command enters it through sh, on both sides)",
                dir.display()
            ),
        }
    }

    fn spawn(&self, mut cmd: Command, capture: bool) -> std::io::Result<Child> {
        match self {
            Cgroup::V1 { spawner, .. } => {
                redirect(&mut cmd, capture);
                spawner.spawn(cmd)
            }
            Cgroup::V2 { dir, .. } => {
                let mut entering = Command::new("sh");
                entering
                    .arg("-c")
                    .arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"")
                    .arg(dir)
                    .arg(cmd.get_program())
                    .args(cmd.get_args());
                if let Some(cwd) = cmd.get_current_dir() {
                    entering.current_dir(cwd);
                }
                for (k, v) in cmd.get_envs() {
                    match v {
                        Some(v) => entering.env(k, v),
                        None => entering.env_remove(k),
                    };
                }
                redirect(&mut entering, capture);
                entering.spawn()
            }
        }
    }

    fn memory_events(&self) -> Option<String> {
        let dir = self.memory()?;
        Some(match self {
            Cgroup::V1 { .. } => format!(
                "OOM kills {}, memory limit hit {} times (memory.failcnt), peak {:.1} MiB (memory.max_usage_in_bytes, page cache included)",
                self.oom_kills(),
                read_number(&dir.join("memory.failcnt")),
                read_number(&dir.join("memory.max_usage_in_bytes")) as f64 / 1048576.0
            ),
            Cgroup::V2 { .. } => format!(
                "OOM kills {}, memory limit hit {} times (memory.events max)",
                self.oom_kills(),
                keyed(&dir.join("memory.events"), "max")
            ),
        })
    }

    fn oom_kills(&self) -> u64 {
        match (self, self.memory()) {
            (Cgroup::V1 { .. }, Some(dir)) => keyed(&dir.join("memory.oom_control"), "oom_kill"),
            (Cgroup::V2 { .. }, Some(dir)) => keyed(&dir.join("memory.events"), "oom_kill"),
            (_, None) => 0,
        }
    }
}

/// The directory of this process's own cgroup in the v1 hierarchy of `controller`.
fn own_dir_v1(mountinfo: &str, own: &str, controller: &str) -> Option<PathBuf> {
    let path = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then_some(path)
    })?;
    mountinfo.lines().find_map(|l| {
        let (fields, fs) = l.split_once(" - ")?;
        let mut fs = fs.split(' ');
        let (kind, _, options) = (fs.next()?, fs.next()?, fs.next()?);
        if kind != "cgroup" || !options.split(',').any(|o| o == controller) {
            return None;
        }
        let fields: Vec<&str> = fields.split(' ').collect();
        Some(within(fields.get(4)?, fields.get(3)?, path))
    })
}

/// The directory of this process's own cgroup in a v2 hierarchy that has both the cpu and
/// the memory controllers.
fn own_dir_v2(mountinfo: &str, own: &str) -> Option<PathBuf> {
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    mountinfo.lines().find_map(|l| {
        let (fields, fs) = l.split_once(" - ")?;
        if fs.split(' ').next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = fields.split(' ').collect();
        let dir = within(fields.get(4)?, fields.get(3)?, path);
        let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).ok()?;
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        (has("cpu") && has("memory")).then_some(dir)
    })
}

/// Where cgroup `path` lies under a mount of the hierarchy's `root` at `mountpoint`.
fn within(mountpoint: &str, root: &str, path: &str) -> PathBuf {
    let relative = path
        .strip_prefix(root)
        .unwrap_or(path)
        .trim_start_matches('/');
    Path::new(mountpoint).join(relative)
}

fn write(path: &Path, value: impl ToString) -> Result<(), String> {
    std::fs::write(path, value.to_string())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn read_number(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The value of `key` in a file of `key value` lines.
fn keyed(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Cgroup directories this process made, removed (in reverse) when dropped, once the
/// processes in them have ended.
struct Dirs(Vec<PathBuf>);

impl Dirs {
    fn make(&mut self, parent: &Path, name: &str) -> Result<PathBuf, String> {
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        self.0.push(dir.clone());
        Ok(dir)
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            // The last children may still be leaving the cgroup as it is removed.
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Err(e) = std::fs::remove_dir(dir) {
                if Instant::now() > deadline {
                    println!("could not remove cgroup {}: {e}", dir.display());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

type Request = (Command, mpsc::Sender<std::io::Result<Child>>);

/// A thread that has moved itself into a cgroup (v1) and starts the commands it is sent:
/// a child is born in the cgroup of the thread that forks it.
struct Spawner {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    fn start(tasks: Vec<PathBuf>) -> Result<Spawner, String> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let (ready, entered) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let moved = (|| {
                // `/proc/thread-self` links to `PID/task/TID`.
                let link = std::fs::read_link("/proc/thread-self")
                    .map_err(|e| format!("cannot read /proc/thread-self: {e}"))?;
                let tid = link
                    .file_name()
                    .and_then(OsStr::to_str)
                    .ok_or_else(|| "no thread id in /proc/thread-self".to_owned())?
                    .to_owned();
                tasks.iter().try_for_each(|t| write(t, &tid))
            })();
            let failed = moved.is_err();
            let _ = ready.send(moved);
            if failed {
                return;
            }
            // A thread that ends leaves its cgroups: nothing to undo.
            for (mut cmd, answer) in incoming {
                let _ = answer.send(cmd.spawn());
            }
        });
        entered
            .recv()
            .map_err(|_| "the spawner thread died".to_owned())??;
        Ok(Spawner {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (answer, child) = mpsc::channel();
        self.requests
            .as_ref()
            .unwrap()
            .send((cmd, answer))
            .map_err(|_| std::io::Error::other("the spawner thread ended"))?;
        child
            .recv()
            .map_err(|_| std::io::Error::other("the spawner thread ended"))?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn redirect(cmd: &mut Command, capture: bool) {
    let out = || {
        if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    cmd.stdin(Stdio::null()).stdout(out()).stderr(out());
}

/// Wall times of one command over several runs.
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub(crate) median: Duration,
    pub(crate) min: Duration,
    pub(crate) max: Duration,
    pub(crate) runs: usize,
}

impl Timing {
    pub(crate) fn of(mut times: Vec<Duration>) -> Timing {
        assert!(!times.is_empty(), "no runs");
        times.sort();
        Timing {
            median: times[times.len() / 2],
            min: times[0],
            max: times[times.len() - 1],
            runs: times.len(),
        }
    }

    pub(crate) fn ms(&self) -> f64 {
        self.median.as_secs_f64() * 1000.0
    }

    pub(crate) fn show(&self) -> String {
        format!(
            "median {} of {} (min {}, max {})",
            ms(self.median),
            self.runs,
            ms(self.min),
            ms(self.max)
        )
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Times the commands `makers` build, in turn (a, b, a, b, ...), `runs` times each after one
/// warm-up run of each (which fills caches: kubectl's discovery, the page cache): taken in
/// turn, a burst of load from the other builders on this machine falls on every side alike.
/// Every run must succeed; one the memory limit kills ends the measurement with which side
/// it was, and how (`Err`); any other failure is a broken setup, shown with its output.
pub(crate) fn time_in_turn(
    setting: &Setting,
    runs: usize,
    makers: &mut [&mut dyn FnMut() -> Command],
) -> Result<Vec<Timing>, (usize, String)> {
    let mut times = vec![Vec::new(); makers.len()];
    for round in 0..=runs {
        for (i, make) in makers.iter_mut().enumerate() {
            let cmd = make();
            let shown = describe(&cmd);
            let kills = setting.oom_kills();
            let start = Instant::now();
            let status = setting.spawn(cmd, false).wait().unwrap();
            let elapsed = start.elapsed();
            if setting.oom_kills() > kills {
                return Err((
                    i,
                    format!(
                        "OOM-killed by the {} MiB limit ({status}): {shown}",
                        MEMORY_LIMIT / 1024 / 1024
                    ),
                ));
            }
            if !status.success() {
                broken(setting, &mut **make, status);
            }
            if round > 0 {
                times[i].push(elapsed);
            }
        }
    }
    Ok(times.into_iter().map(Timing::of).collect())
}

/// [`time_in_turn`] where no side may be killed by the memory limit.
pub(crate) fn time_all(
    setting: &Setting,
    runs: usize,
    makers: &mut [&mut dyn FnMut() -> Command],
) -> Vec<Timing> {
    time_in_turn(setting, runs, makers)
        .unwrap_or_else(|(_, killed)| panic!("[{}] {killed}", setting.name))
}

/// [`time_all`] of one command.
pub(crate) fn time(setting: &Setting, runs: usize, mut make: impl FnMut() -> Command) -> Timing {
    time_all(setting, runs, &mut [&mut make]).remove(0)
}

/// Stops the benchmark on a command that failed, with what it said when run again.
fn broken(setting: &Setting, make: &mut dyn FnMut() -> Command, status: ExitStatus) -> ! {
    let cmd = make();
    let shown = describe(&cmd);
    let again = setting.spawn(cmd, true).wait_with_output().unwrap();
    panic!(
        "[{}] {shown}\nended with {status}; run again: {}\nstdout:\n{}\nstderr:\n{}{}",
        setting.name,
        again.status,
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr),
        setting
            .memory_events()
            .map(|m| format!("\ncgroup: {m}"))
            .unwrap_or_default()
    );
}

/// A command line to show, that a reader can paste into a shell: the variables set for it
/// (values of secrets shown as `…`), the program and its arguments, quoted.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut words = Vec::new();
    let mut unset = Vec::new();
    for (k, v) in cmd.get_envs() {
        let k = k.to_string_lossy();
        match v {
            Some(_) if is_secret(&k) => words.push(format!("{k}=…")),
            Some(v) => words.push(format!("{k}={}", quote(v))),
            None => unset.push(format!("-u {k}")),
        }
    }
    if !unset.is_empty() {
        words.insert(0, format!("env {}", unset.join(" ")));
    }
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn is_secret(name: &str) -> bool {
    ["PASSWORD", "SECRET", "TOKEN"]
        .iter()
        .any(|s| name.contains(s))
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a measurement must stay within.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// A ratio of at most this.
    AtMost(f64),
    /// A ratio of at least this.
    AtLeast(f64),
    /// A time under this many milliseconds.
    UnderMs(f64),
    /// A size under this many MiB.
    UnderMiB(f64),
    /// Shown for reference, with no target.
    None,
}

impl Target {
    fn met(self, value: f64) -> Option<bool> {
        match self {
            Target::AtMost(t) => Some(value <= t),
            Target::AtLeast(t) => Some(value >= t),
            Target::UnderMs(t) | Target::UnderMiB(t) => Some(value < t),
            Target::None => None,
        }
    }

    fn value(self, value: f64) -> String {
        match self {
            Target::AtMost(_) | Target::AtLeast(_) | Target::None => format!("{value:.2}"),
            Target::UnderMs(_) => format!("{value:.0} ms"),
            Target::UnderMiB(_) => format!("{value:.1} MiB"),
        }
    }

    fn show(self) -> String {
        match self {
            Target::AtMost(t) => format!("target <= {t}"),
            Target::AtLeast(t) => format!("target >= {t}"),
            Target::UnderMs(t) => format!("target < {t} ms"),
            Target::UnderMiB(t) => format!("target < {t} MiB"),
            Target::None => "reference, no target".into(),
        }
    }

    fn verdict(self, value: f64) -> String {
        match self.met(value) {
            Some(true) => format!("{}: met", self.show()),
            Some(false) => format!("{}: NOT MET", self.show()),
            None => self.show(),
        }
    }
}

/// One side of a ratio: what it is, how long it took, and its exact command.
pub(crate) struct Side<'a> {
    pub(crate) name: &'a str,
    pub(crate) timing: &'a Timing,
    pub(crate) command: String,
}

/// Every measurement of a benchmark, in every setting, for the summary at its end.
#[derive(Default)]
pub(crate) struct Summary {
    rows: Vec<Row>,
}

/// One measurement: its value, or why it has none, in each setting it was taken in.
struct Row {
    what: String,
    target: Target,
    values: Vec<(&'static str, Result<f64, String>)>,
}

impl Summary {
    /// Records the ratio of the median times `over` / `under` and prints it, with its target
    /// and the commands of both sides.
    pub(crate) fn ratio(
        &mut self,
        setting: &Setting,
        what: &str,
        target: Target,
        over: &Side<'_>,
        under: &Side<'_>,
    ) {
        let value = over.timing.median.as_secs_f64() / under.timing.median.as_secs_f64();
        self.record(setting, what, target, value);
        for side in [over, under] {
            println!("    {}: {}", side.name, side.timing.show());
            println!("      $ {}", side.command);
        }
    }

    /// Records a measurement (a time, a size) and prints its line.
    pub(crate) fn record(&mut self, setting: &Setting, what: &str, target: Target, value: f64) {
        println!(
            "[{}] {what} = {}   {}",
            setting.name,
            target.value(value),
            target.verdict(value)
        );
        self.row(what, target).push((setting.name, Ok(value)));
    }

    /// Records that a measurement could not be taken in a setting, and why.
    pub(crate) fn not_taken(&mut self, setting: &Setting, what: &str, target: Target, why: &str) {
        println!("[{}] {what}: NOT TAKEN, {why}", setting.name);
        self.row(what, target)
            .push((setting.name, Err(why.to_owned())));
    }

    fn row(&mut self, what: &str, target: Target) -> &mut Vec<(&'static str, Result<f64, String>)> {
        let at = match self.rows.iter().position(|r| r.what == what) {
            Some(at) => at,
            None => {
                self.rows.push(Row {
                    what: what.to_owned(),
                    target,
                    values: Vec::new(),
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[at].values
    }

    /// Every measurement, one line each, with its value in each setting.
    pub(crate) fn print(&self) {
        println!();
        println!("summary:");
        for row in &self.rows {
            println!("  {}   ({})", row.what, row.target.show());
            let shown: Vec<String> = row
                .values
                .iter()
                .map(|(setting, value)| match value {
                    Ok(v) => match row.target.met(*v) {
                        Some(false) => format!("{setting}: {} NOT MET", row.target.value(*v)),
                        _ => format!("{setting}: {}", row.target.value(*v)),
                    },
                    Err(why) => format!("{setting}: not taken ({why})"),
                })
                .collect();
            println!("    {}", shown.join(" | "));
        }
    }
}

/// The test virtualenv's kubectl (`scripts/test-venv.sh`): the real binary, not a dispatcher
/// on PATH that adds its own process.
pub(crate) fn kubectl() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/kubectl");
    assert!(
        venv.exists(),
        "{} is missing: run ./tests/run.sh",
        venv.display()
    );
    venv
}

/// The peak RSS (KiB) of one run of `cmd` in `setting`, by GNU time, and how it ended.
pub(crate) fn peak_rss(setting: &Setting, cmd: &Command) -> (u64, String) {
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "peak-rss-kib %M"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let out = setting.spawn(timed, true).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time said: {text}"));
    let ended = text
        .lines()
        .find(|l| l.starts_with("Command terminated by signal"))
        .map_or_else(
            || format!("exit {}", out.status.code().unwrap_or(-1)),
            str::to_owned,
        );
    (rss, ended)
}
