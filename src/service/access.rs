//! Who may sign in, as in service now: the `[access]` lists plus the
//! entries of the list files, swapped whole when the files are read again
//! (SIGHUP). A check takes the current [`Loaded`] (a read lock held for an
//! `Arc` clone) and makes a few set lookups: cheap enough for every gateway
//! request.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::audit::AuditEvent;
use crate::configuration::{read_list_file, AccessConfig, ListKind};
use crate::domain::access::{AccessPolicy, Person, Refusal};
use crate::metrics::METRICS;
use crate::upstream::unverified_claims;

/// One list as in service: its entries (sorted), how many came from the
/// configuration and how many from its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveList {
    pub entries: Vec<String>,
    pub from_configuration: usize,
    pub file: Option<PathBuf>,
    pub from_file: usize,
}

/// The policy in service and what it was made from.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub policy: AccessPolicy,
    pub allowed_emails: EffectiveList,
    pub allowed_domains: EffectiveList,
    pub google_workspace_domains: EffectiveList,
    pub denied_emails: EffectiveList,
    /// When the lists were put in service (Unix seconds).
    pub loaded_at: i64,
}

/// The access policy, reloadable.
pub struct AccessLists {
    config: AccessConfig,
    current: RwLock<Arc<Loaded>>,
}

/// Where a refusal happened (audit and metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Signin,
    Gateway,
    Refresh,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Signin => "signin",
            Stage::Gateway => "gateway",
            Stage::Refresh => "refresh",
        }
    }
}

fn merged(
    configured: &[String],
    file: Option<&PathBuf>,
    kind: ListKind,
) -> Result<EffectiveList, String> {
    let from_file = match file {
        Some(path) => read_list_file(path, kind)?,
        None => Vec::new(),
    };
    let mut entries: Vec<String> = configured
        .iter()
        .chain(&from_file)
        .map(|e| e.trim().to_ascii_lowercase())
        .collect();
    entries.sort();
    entries.dedup();
    Ok(EffectiveList {
        entries,
        from_configuration: configured.len(),
        file: file.cloned(),
        from_file: from_file.len(),
    })
}

impl Loaded {
    /// The lists from `config` and its files (read now).
    fn read(config: &AccessConfig, now: i64) -> Result<Self, String> {
        let c = config;
        let allowed_emails = merged(
            &c.allowed_emails,
            c.allowed_emails_file.as_ref(),
            ListKind::Addresses,
        )?;
        let denied_emails = merged(
            &c.denied_emails,
            c.denied_emails_file.as_ref(),
            ListKind::Addresses,
        )?;
        let allowed_domains = merged(&c.allowed_domains, None, ListKind::Domains)?;
        let workspace = merged(&c.google_workspace_domains, None, ListKind::Domains)?;
        Ok(Self {
            policy: AccessPolicy::new(
                &allowed_emails.entries,
                &allowed_domains.entries,
                &workspace.entries,
                &denied_emails.entries,
            ),
            allowed_emails,
            allowed_domains,
            google_workspace_domains: workspace,
            denied_emails,
            loaded_at: now,
        })
    }
}

impl AccessLists {
    /// The policy `config` describes, its files read now. Configuration
    /// validation has read them once already; should one have gone
    /// meanwhile, the configured lists alone serve (logged).
    pub fn new(config: &AccessConfig, now: i64) -> Self {
        let loaded = Loaded::read(config, now).unwrap_or_else(|problem| {
            tracing::error!(problem = %problem, "an access list file could not be read; serving the configured lists only");
            let mut bare = config.clone();
            bare.allowed_emails_file = None;
            bare.denied_emails_file = None;
            Loaded::read(&bare, now).unwrap_or_default()
        });
        Self {
            config: config.clone(),
            current: RwLock::new(Arc::new(loaded)),
        }
    }

    /// The policy in service.
    pub fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the files again and puts the new lists in service; a file
    /// that cannot be read (or holds a bad entry) keeps the old lists and
    /// answers why.
    pub fn reload(&self, now: i64) -> Result<Arc<Loaded>, String> {
        let loaded = Arc::new(Loaded::read(&self.config, now)?);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = loaded.clone();
        Ok(loaded)
    }

    /// Reloads and says in the log what came of it.
    pub fn reload_and_log(&self, now: i64, trigger: &str) {
        match self.reload(now) {
            Ok(l) => tracing::info!(
                trigger,
                allowed_emails = l.allowed_emails.entries.len(),
                allowed_domains = l.allowed_domains.entries.len(),
                google_workspace_domains = l.google_workspace_domains.entries.len(),
                denied_emails = l.denied_emails.entries.len(),
                "access lists reloaded"
            ),
            Err(problem) => tracing::error!(
                trigger, problem = %problem,
                "the access list files were refused; the lists in service stay"
            ),
        }
    }

    /// Whether whoever `person` is may use the service now.
    pub fn check(&self, person: Person<'_>) -> Result<(), Refusal> {
        self.current().policy.check(person)
    }

    /// Checks a user kept in the Vault: their verified email, and the `hd`
    /// claim of the ID token kept with them (validated when it was
    /// received, sealed since) when Workspace domains are configured.
    pub fn check_stored(
        &self,
        email: Option<&str>,
        email_verified: bool,
        id_token: Option<&str>,
    ) -> Result<(), Refusal> {
        let loaded = self.current();
        let claims = id_token
            .filter(|_| loaded.policy.needs_hosted_domain())
            .and_then(unverified_claims);
        let hd = claims.as_ref().and_then(|c| c.get("hd")?.as_str());
        loaded.policy.check(Person {
            email,
            email_verified,
            hosted_domain: hd,
        })
    }

    /// Whether a list comes from a file (then SIGHUP reads it again).
    pub fn has_files(&self) -> bool {
        self.config.allowed_emails_file.is_some() || self.config.denied_emails_file.is_some()
    }

    /// The `hd` hint for Google's authorization URL.
    pub fn hd_hint(&self) -> Option<String> {
        self.current().policy.hd_hint().map(str::to_owned)
    }
}

/// Records a refusal: the audit event and the metric.
pub fn record_refusal(
    stage: Stage,
    refusal: Refusal,
    client_id: &str,
    ip: &str,
    user: Option<&str>,
) {
    AuditEvent::AccessRefused {
        stage: stage.as_str(),
        client_id,
        ip,
        user,
        reason: refusal.as_str(),
    }
    .emit();
    METRICS
        .access_refused
        .with_label_values(&[stage.as_str(), refusal.as_str()])
        .inc();
}

/// Puts new lists in service on every SIGHUP (with the certificates'
/// reload, when there are certificate files: each listener gets every
/// signal). Must run inside the actix system.
pub fn reload_on_hangup(lists: Arc<AccessLists>, clock: crate::clock::Clock) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP will not reload the access lists");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            lists.reload_and_log(clock.now(), "SIGHUP");
        }
    });
}
