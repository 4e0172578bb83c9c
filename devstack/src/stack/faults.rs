//! What fault tests act on: the children's process ids (to stop or kill them), an Azurite
//! outage, stopped and started again on the same ports, and roles granted or revoked while the
//! stack runs.

use super::lifecycle::DevStack;
use super::topology::{Principal, Service};
use crate::azurite::Azurite;
use crate::rbac::{Role, Scope};
use anyhow::Context;

impl DevStack {
    /// Grants `who` `role` on `scope`, as an operator would.
    pub fn grant(&self, who: impl Into<Principal>, role: Role, scope: Scope) {
        self.roles.grant(&self.object_id(who), role, scope);
    }

    /// Revokes `who`'s `role` on `scope`; true when it held it.
    pub fn revoke(&self, who: impl Into<Principal>, role: Role, scope: &Scope) -> bool {
        self.roles.revoke(&self.object_id(who), role, scope)
    }

    /// `who`'s object id (`oid` in its tokens, the principal of its role assignments).
    pub fn object_id(&self, who: impl Into<Principal>) -> String {
        self.identity(who).object_id.clone()
    }

    /// `who` as the identity emulator knows it: ids and secrets.
    pub fn identity(
        &self,
        who: impl Into<Principal>,
    ) -> std::sync::Arc<crate::identity::ServicePrincipal> {
        let name = who.into().name();
        self.identities
            .get(name)
            .unwrap_or_else(|| panic!("no identity named {name}"))
    }

    /// Process ids of every child (Azurite and the services).
    pub fn child_pids(&self) -> Vec<u32> {
        self.azurite_pid()
            .into_iter()
            .chain(self.services.iter().map(|(_, p)| p.pid()))
            .collect()
    }

    /// The process id of a running `service`, for fault injection.
    pub fn service_pid(&self, service: Service) -> Option<u32> {
        self.services
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, p)| p.pid())
    }

    /// Azurite's process id, for fault injection (SIGSTOP as a storage stall).
    pub fn azurite_pid(&self) -> Option<u32> {
        self.azurite.lock().as_ref().map(|a| a.process.pid())
    }

    /// Stops Azurite (a storage outage); [`DevStack::start_azurite`] brings it back on the same
    /// ports with the same data (when the stack persists storage).
    pub async fn stop_azurite(&self) {
        let azurite = self.azurite.lock().take();
        if let Some(azurite) = azurite {
            let ports = azurite.stop_keeping_ports().await;
            *self.stopped_azurite_ports.lock() = Some(ports);
        }
    }

    /// Starts Azurite again after [`DevStack::stop_azurite`].
    pub async fn start_azurite(&self) -> anyhow::Result<()> {
        let ports = self
            .stopped_azurite_ports
            .lock()
            .take()
            .context("Azurite was not stopped")?;
        let azurite = Azurite::start_on(&self.azurite_options, &self.sink, ports).await?;
        *self.azurite.lock() = Some(azurite);
        Ok(())
    }
}
