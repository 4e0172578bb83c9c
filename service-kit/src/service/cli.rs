//! The command line every service binary shares, through clap: `<binary>` serves, `<binary>
//! healthcheck [PATH]` probes a running one (the container probe), `--help` and `--version`
//! answer as in every binary of this project. Configuration comes from the environment, never
//! from arguments, so an unknown argument is refused rather than ignored.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// `<binary> [healthcheck [PATH]]`.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Configuration is read from the environment (docs/configuration.md).\n\
                  Without a command the service runs until SIGTERM or SIGINT."
)]
pub struct ServiceCli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<ServiceCommand>,
}

/// A command of a service binary.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum ServiceCommand {
    /// Probe the running service on PORT (loopback) and exit 0 on a 2xx answer.
    Healthcheck {
        /// The path asked.
        #[arg(default_value = "/readyz")]
        path: String,
    },
}

impl ServiceCli {
    /// Parses `args` (the binary's name first) as binary `name`, described by `about`.
    pub fn try_parse_as<I, T>(
        name: &'static str,
        about: &'static str,
        args: I,
    ) -> clap::error::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command()
            .name(name)
            .bin_name(name)
            .about(about)
            .try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_argument_serves_and_healthcheck_takes_an_optional_path() {
        let parse = |args: &[&str]| ServiceCli::try_parse_as("main-app", "the app", args);
        assert_eq!(parse(&["main-app"]).unwrap().command, None);
        assert_eq!(
            parse(&["main-app", "healthcheck"]).unwrap().command,
            Some(ServiceCommand::Healthcheck {
                path: "/readyz".into()
            })
        );
        assert_eq!(
            parse(&["main-app", "healthcheck", "/healthz"])
                .unwrap()
                .command,
            Some(ServiceCommand::Healthcheck {
                path: "/healthz".into()
            })
        );
    }

    #[test]
    fn help_is_an_answer_and_anything_else_an_error() {
        let help =
            ServiceCli::try_parse_as("main-app", "the app", ["main-app", "--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        let text = help.to_string();
        assert!(
            text.contains("Usage: main-app [COMMAND]") && text.contains("healthcheck"),
            "{text}"
        );
        assert!(text.contains("docs/configuration.md"), "{text}");
        let wrong = ServiceCli::try_parse_as("main-app", "the app", ["main-app", "--port", "1"])
            .unwrap_err();
        assert_eq!(wrong.kind(), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(wrong.exit_code(), 2);
    }
}
