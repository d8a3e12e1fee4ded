//! The help beyond the derive: the default scenario's values as `[default: …]`,
//! the examples, completions and the man page.

use super::*;

/// The default scenario's value of every scenario flag that has one, by the flag's id,
/// spelled as the flag takes it (`60s`, `32KiB`, `none`), or in words where no value
/// says it (`off`, `all`).
pub fn scenario_defaults() -> Vec<(&'static str, String)> {
    scenario_defaults_of(&ScenarioConfig::default())
}

/// The value of every scenario flag that has one in scenario `c`, spelled as the flag
/// takes it (see [`scenario_defaults`]).
pub fn scenario_defaults_of(c: &ScenarioConfig) -> Vec<(&'static str, String)> {
    let spill = c.spill.clone().unwrap_or_default();
    let ms = |v: u64| spell_micros(v.saturating_mul(1000));
    // Whole microseconds: the default scenario's duration is whole seconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let duration_us = (c.duration_s * 1e6).round() as u64;
    vec![
        ("duration", spell_micros(duration_us)),
        ("producers", c.producers.to_string()),
        (
            "rate",
            c.rate_per_sec
                .map_or_else(|| "unlimited".to_owned(), |r| format!("{r}/s")),
        ),
        ("backoff", spell_micros(c.backoff_us)),
        (
            "producer_scheduling",
            c.producer_scheduling.name().to_owned(),
        ),
        ("target", c.target.name().to_owned()),
        (
            "cpus",
            c.cpus.map_or_else(|| "all".to_owned(), |n| n.to_string()),
        ),
        ("payload", c.payload.clone()),
        ("seed", c.seed.to_string()),
        ("consumer_delay", spell_micros(c.consumer_delay_us)),
        (
            "consumer_cost_per_kib",
            spell_micros(c.consumer_cost_per_kib_us),
        ),
        ("consumer_jitter", spell_micros(c.consumer_jitter_us)),
        (
            "stall_every",
            c.consumer_stall_every_ms
                .map_or_else(|| "off".to_owned(), ms),
        ),
        ("stall_for", ms(c.consumer_stall_for_ms)),
        ("interval", spell_micros(c.interval_us)),
        ("interval_jitter", spell_micros(c.interval_jitter_us)),
        (
            "max_batch_bytes",
            c.max_batch_bytes
                .map_or_else(|| "none".to_owned(), spell_bytes),
        ),
        (
            "max_batch_items",
            c.max_batch_items
                .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        ),
        ("max_buffered_bytes", spell_bytes(c.max_buffered_bytes)),
        (
            "policy",
            match c.policy {
                Policy::Reject => "reject",
                Policy::Block => "block",
                Policy::DropOldest => "drop-oldest",
            }
            .to_owned(),
        ),
        (
            "weigh",
            match c.weighing {
                runlog::Weighing::Payload => "payload",
                runlog::Weighing::Occupancy => "occupancy",
            }
            .to_owned(),
        ),
        ("block_timeout", spell_micros(c.block_timeout_us)),
        ("partitions", c.partitions.to_string()),
        (
            "spill_dir",
            c.spill
                .as_ref()
                .map_or_else(|| "off".to_owned(), |s| s.dir.display().to_string()),
        ),
        ("max_spill_bytes", spell_bytes(spill.max_disk_bytes)),
        (
            "spill_sync",
            match spill.sync {
                runlog::SpillSync::EveryBatch => "every-batch".to_owned(),
                runlog::SpillSync::Interval => ms(spill.sync_interval_ms),
                runlog::SpillSync::Os => "os".to_owned(),
            },
        ),
        ("sample_every", ms(c.sample_every_ms)),
        ("drain_timeout", ms(c.drain_timeout_ms)),
    ]
}

/// `60_000_000` -> `60s`, `10_000` -> `10ms`, `200` -> `200us`, `0` -> `0s`.
fn spell_micros(us: u64) -> String {
    match us {
        0 => "0s".to_owned(),
        us if us % 1_000_000 == 0 => format!("{}s", us / 1_000_000),
        us if us % 1_000 == 0 => format!("{}ms", us / 1_000),
        us => format!("{us}us"),
    }
}

/// `32768` -> `32KiB`, `67108864` -> `64MiB`, `1000` -> `1000B`.
fn spell_bytes(b: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(size, _)| b > 0 && b % size == 0)
        .map_or_else(
            || format!("{b}B"),
            |(size, unit)| format!("{}{unit}", b / size),
        )
}

/// One example: the command line after the program's name, and what it does.
type Example = (&'static str, &'static str);

/// The examples of the root command (`None`) and of each main subcommand.
const EXAMPLES: &[(Option<&str>, &[Example])] = &[
    (
        None,
        &[
            ("", "the default scenario (60 s)"),
            ("--preset quick -q", "a 10 s smoke test, only the summary"),
            (
                "-d 2m -p 8 --payload fixed:10KiB --policy block",
                "2 minutes, 8 producers, 10 KiB events, producers wait for room",
            ),
            (
                "-d 30s --rate 200k/s --threshold 'p99<50ms'",
                "open loop; exit 1 if p99 is 50 ms or more",
            ),
            (
                "--preset quick --repeat 5 -o target/runs/base",
                "5 runs into one group, before a change",
            ),
            (
                "--preset quick --repeat 5 -o target/runs/candidate",
                "and after it",
            ),
            (
                "compare target/runs/base/latest target/runs/candidate/latest",
                "the candidate judged against the base, metric by metric",
            ),
            ("tune --budget 30s", "find limits for this machine"),
        ],
    ),
    (
        Some("tune"),
        &[
            ("tune --budget 30s", "tune the default scenario"),
            (
                "tune -p 8 --consumer-delay 1ms --budget 30s -o target/tune",
                "a slower consumer; tuned.toml in target/tune",
            ),
            ("--config target/soak/tuned.toml", "run what it recommends"),
        ],
    ),
    (
        Some("compare"),
        &[
            (
                "compare target/runs/base/latest target/runs/candidate/latest",
                "a verdict per metric; writes compare.html beside the candidate",
            ),
            (
                "compare target/runs/base/latest target/runs/candidate/latest --noise 5% --fail-on-regression",
                "exit 1 when a primary metric regressed beyond 5%",
            ),
            (
                "compare target/runs/base/latest target/runs/candidate/latest --format md >> \"$GITHUB_STEP_SUMMARY\"",
                "a CI job summary",
            ),
        ],
    ),
    (
        Some("crash-test"),
        &[
            (
                "crash-test",
                "10 kills and a last run; exit 1 if an accepted event was lost",
            ),
            ("crash-test --kills 3 --seed 7", "3 kills at other moments"),
            (
                "crash-test --kills 20 --payload fixed:1KiB --spill-sync every-batch",
                "bigger events, a sync per append",
            ),
        ],
    ),
    (
        Some("report"),
        &[
            ("report", "the latest run's report.html again"),
            ("report target/soak/latest", "a given run's"),
        ],
    ),
    (
        Some("export"),
        &[
            (
                "export --csv > samples.csv",
                "the latest run's samples as CSV",
            ),
            ("export target/soak/latest --csv", "a given run's"),
        ],
    ),
    (
        Some("watch"),
        &[
            ("watch", "follow the latest run from another shell"),
            (
                "watch target/soak/latest --fps 4",
                "a given run, 4 frames a second",
            ),
        ],
    ),
    (
        Some("completions"),
        &[
            (
                "completions bash > ~/.local/share/bash-completion/completions/soak",
                "bash",
            ),
            (
                "completions zsh > ~/.zfunc/_soak",
                "zsh (with ~/.zfunc in $fpath)",
            ),
            (
                "completions fish > ~/.config/fish/completions/soak.fish",
                "fish",
            ),
        ],
    ),
    (
        Some("man"),
        &[("man > soak.1 && man ./soak.1", "read the man page")],
    ),
];

/// The `Examples:` section of `subcommand` (`None`: the root), each line starting with
/// `program`, styled like clap's own headings.
fn examples(program: &str, subcommand: Option<&str>, styles: &clap::builder::Styles) -> String {
    let lines = EXAMPLES
        .iter()
        .find(|(sub, _)| *sub == subcommand)
        .map_or(&[][..], |(_, lines)| lines);
    let commands: Vec<String> = lines
        .iter()
        .map(|(args, _)| {
            if args.is_empty() {
                program.to_owned()
            } else {
                format!("{program} {args}")
            }
        })
        .collect();
    let header = styles.get_header();
    let mut text = format!("{header}Examples:{header:#}\n");
    for (command, (_, what)) in commands.iter().zip(lines) {
        text.push_str(&format!("  {command}\n      {what}\n"));
    }
    text
}

/// The root command's note above its examples.
const DEFAULTS_NOTE: &str = "The scenario defaults shown are the default scenario's; --preset or --config \
     start from other values, and each flag given overrides them.";

/// The full command definition, naming the program `program` (in usage lines and
/// examples): the derive's arguments plus the default scenario's values and the examples.
pub fn command_for(program: &str) -> clap::Command {
    use clap::CommandFactory;
    let defaults = scenario_defaults();
    let with_defaults = |cmd: clap::Command| defaults_shown(cmd, &defaults);
    let crash = scenario_defaults_of(&crate::crash::base_scenario());
    let crash_test = |cmd: clap::Command| {
        defaults_shown(cmd, &crash)
            // Always on in the crash test.
            .mut_arg("spill_write_ahead", |arg| arg.hide(true))
            .mut_arg("seed", |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(help.replacen(
                    "Seed for payload generation",
                    "Seed for payload generation and for the moments of the kills",
                    1,
                ))
            })
    };
    let root = with_defaults(Cli::command());
    let styles = root.get_styles().clone();
    let note = format!("{DEFAULTS_NOTE}\n\n{}", examples(program, None, &styles));
    let mut root = root
        .bin_name(program)
        .after_help(note.clone())
        .after_long_help(note)
        .mut_subcommand("tune", with_defaults)
        .mut_subcommand("crash-test", crash_test);
    for (sub, _) in EXAMPLES.iter().filter(|(sub, _)| sub.is_some()) {
        let sub = sub.unwrap_or_default();
        let text = examples(program, Some(sub), &styles);
        root = root.mut_subcommand(sub, |cmd| {
            cmd.after_help(text.clone()).after_long_help(text)
        });
    }
    root
}

/// `cmd` with `[default: …]` after the help of every argument `defaults` has a value for.
/// `mut_args`, not `mut_arg`: the arguments keep their order, and with it the order of the
/// headings (each heading sits where its first argument is).
fn defaults_shown(cmd: clap::Command, defaults: &[(&str, String)]) -> clap::Command {
    cmd.mut_args(
        |arg| match defaults.iter().find(|(id, _)| arg.get_id() == *id) {
            Some((_, value)) => {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {value}]"))
            }
            None => arg,
        },
    )
}

/// [`command_for`] the program as the user ran it ([`crate::program::name`]).
pub fn command() -> clap::Command {
    command_for(crate::program::name())
}

/// Writes the completion script for `shell`, for the installed binary `soak`.
///
/// # Errors
///
/// The writer's.
pub fn completions(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut cmd = command_for(crate::program::DIRECT);
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, crate::program::DIRECT, &mut buf);
    out.write_all(&buf)
}

/// Writes the man page (roff) of `soak` and its subcommands.
///
/// # Errors
///
/// The writer's.
pub fn man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command_for(crate::program::DIRECT)).render(out)
}
