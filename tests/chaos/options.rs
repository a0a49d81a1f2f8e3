//! The controller's command line.

use std::path::PathBuf;
use std::time::Duration;

use crate::TICK;

/// The controller's command line.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) duration: Duration,
    pub(crate) tasks: usize,
    pub(crate) workers: usize,
    pub(crate) producers: usize,
    pub(crate) seed: u64,
    pub(crate) json: Option<PathBuf>,
    pub(crate) keep: bool,
}

impl Options {
    /// Reads the flags; `None` for `--help`, an error naming a bad flag or value.
    pub(crate) fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut options = Self {
            duration: Duration::from_mins(1),
            tasks: 6000,
            workers: 6,
            producers: 4,
            seed: 1,
            json: None,
            keep: false,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("`{flag}` needs a value"));
            let count = |text: &String| -> Result<usize, String> {
                text.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{flag} {text}`: expected a whole number above 0"))
            };
            match flag.as_str() {
                "--duration" => {
                    let text = value()?;
                    options.duration =
                        docket_grammar::duration::parse(text, docket_grammar::duration::Forms::All)
                            .map_err(|error| format!("`--duration {text}`: {error}"))?;
                }
                "--tasks" => options.tasks = count(value()?)?,
                "--workers" => options.workers = count(value()?)?,
                "--producers" => options.producers = count(value()?)?,
                "--seed" => {
                    let text = value()?;
                    options.seed = text
                        .parse()
                        .map_err(|_| format!("`--seed {text}`: expected a whole number"))?;
                }
                "--json" => options.json = Some(PathBuf::from(value()?)),
                "--keep" => options.keep = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown flag `{other}`")),
            }
        }
        if options.duration < TICK {
            return Err(format!(
                "`--duration`: {:?} is shorter than one chaos tick ({TICK:?})",
                options.duration
            ));
        }
        Ok(Some(options))
    }
}
