//! `skiff-build login`: check credentials against a registry and save them; `logout`
//! forgets them.

use std::io::BufRead;

use anyhow::{bail, Context, Result};
use skiff_specs::registry::{self, Credentials};

use crate::cli::{LoginArgs, LogoutArgs};

pub fn run(args: &LoginArgs) -> Result<()> {
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => bail!("give the password with --password-stdin (or -p)"),
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let credentials = Credentials {
        username: args.username.clone(),
        password,
    };
    let path = registry::login(
        &registry::Client::new(crate::image::client_options(&args.registry_args)),
        &args.registry,
        &credentials,
    )
    .with_context(|| format!("logging in to {}", args.registry))?;
    eprintln!("Login Succeeded (credentials saved in {})", path.display());
    Ok(())
}

pub fn logout(args: &LogoutArgs) -> Result<()> {
    let client = registry::Client::new(registry::ClientOptions::default());
    match registry::logout(&client, &args.registry)
        .with_context(|| format!("logging out of {}", args.registry))?
    {
        Some(path) => eprintln!(
            "Removed login credentials for {} from {}",
            args.registry,
            path.display()
        ),
        None => eprintln!("Not logged in to {}", args.registry),
    }
    Ok(())
}
