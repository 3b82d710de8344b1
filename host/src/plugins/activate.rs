//! From identity.xml to the active components, each kind in `orderId` order.
//!
//! A component is active when an `EventListener` with `enable="true"` names it (by name or
//! alias); a built-in one also when no listener names it. `SupportedGrantType` maps `grant_type`
//! values to grant handlers; an active handler no entry maps serves the grant types it
//! `provides`.

use super::registry::{Entry, Registry};
use super::{Host, Origin, PluginError};
use crate::config::{EventListener, Identity};
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_core::{
    ClientAuthenticator, Component, ComponentContext, ComponentKind, GrantHandler, HostSettings,
    JwtValidator, Properties,
};

/// The order of a component no listener orders: after every ordered one.
const UNORDERED: i32 = i32::MAX;

/// An active component.
pub struct Active<T: ?Sized> {
    pub name: String,
    pub order_id: i32,
    pub origin: Origin,
    pub component: Arc<T>,
}

impl<T: ?Sized> Clone for Active<T> {
    fn clone(&self) -> Self {
        Active {
            name: self.name.clone(),
            order_id: self.order_id,
            origin: self.origin.clone(),
            component: self.component.clone(),
        }
    }
}

/// The active components.
#[derive(Default, Clone)]
pub struct Components {
    /// By `grant_type`.
    pub grant_handlers: BTreeMap<String, Active<dyn GrantHandler>>,
    /// In `orderId` order: the first that can authenticate a request does.
    pub client_authenticators: Vec<Active<dyn ClientAuthenticator>>,
    /// In `orderId` order: the first that can validate a source does.
    pub jwt_validators: Vec<Active<dyn JwtValidator>>,
    /// The `token_endpoint_auth_method`s the active authenticators provide.
    pub auth_methods: Vec<String>,
}

/// Builds the active components and installs the validators in `host`.
pub fn activate(
    registry: &Registry,
    identity: &Identity,
    settings: &HostSettings,
    host: &Arc<Host>,
) -> Result<Components, PluginError> {
    let listeners = listeners_by_entry(registry, identity)?;

    let mut built: Vec<(i32, usize, &Entry, Component)> = Vec::new();
    for (index, entry) in registry.entries().iter().enumerate() {
        let listener = listeners.get(&index).copied();
        let active = match listener {
            Some(l) => l.enable,
            None => entry.origin == Origin::BuiltIn,
        };
        if !active {
            continue;
        }
        let component = construct(entry, listener, identity, settings, host)?;
        let order = listener.and_then(|l| l.order_id).unwrap_or(UNORDERED);
        built.push((order, index, entry, component));
    }
    built.sort_by_key(|(order, index, _, _)| (*order, *index));

    let mut components = Components::default();
    let mut handlers: Vec<(usize, Active<dyn GrantHandler>)> = Vec::new();
    for (order_id, index, entry, component) in built {
        let name = entry.registration.info.name.clone();
        let origin = entry.origin.clone();
        match component {
            Component::GrantHandler(c) => handlers.push((
                index,
                Active {
                    name,
                    order_id,
                    origin,
                    component: c,
                },
            )),
            Component::ClientAuthenticator(c) => {
                components
                    .auth_methods
                    .extend(entry.registration.info.provides.iter().cloned());
                components.client_authenticators.push(Active {
                    name,
                    order_id,
                    origin,
                    component: c,
                })
            }
            Component::JwtValidator(c) => components.jwt_validators.push(Active {
                name,
                order_id,
                origin,
                component: c,
            }),
        }
    }
    components.grant_handlers = map_grant_types(registry, identity, handlers)?;
    host.set_validators(
        components
            .jwt_validators
            .iter()
            .map(|v| (v.name.clone(), v.component.clone()))
            .collect(),
    );
    Ok(components)
}

/// Which listener names which registry entry. An enabled listener that names nothing is an
/// error; a disabled one is fine (its plugin may simply not be installed).
fn listeners_by_entry<'a>(
    registry: &Registry,
    identity: &'a Identity,
) -> Result<BTreeMap<usize, &'a EventListener>, PluginError> {
    let mut by_entry: BTreeMap<usize, &EventListener> = BTreeMap::new();
    for listener in &identity.listeners {
        let Some(index) = registry
            .entries()
            .iter()
            .position(|e| e.registration.info.answers_to(&listener.name))
        else {
            if listener.enable {
                let available: Vec<&str> = registry
                    .entries()
                    .iter()
                    .map(|e| e.registration.info.name.as_str())
                    .collect();
                return Err(PluginError::NotProvided {
                    file: identity.file.clone(),
                    line: listener.line,
                    name: listener.name.clone(),
                    hint: if available.is_empty() {
                        " (no plugin is loaded: is its .so in the dropins directory?)".into()
                    } else {
                        format!(" (available: {})", available.join(", "))
                    },
                });
            }
            continue;
        };
        if let Some(other) = by_entry.insert(index, listener) {
            return Err(PluginError::DuplicateListener {
                file: identity.file.clone(),
                line: listener.line,
                other_line: other.line,
                name: listener.name.clone(),
            });
        }
    }
    Ok(by_entry)
}

fn construct(
    entry: &Entry,
    listener: Option<&EventListener>,
    identity: &Identity,
    settings: &HostSettings,
    host: &Arc<Host>,
) -> Result<Component, PluginError> {
    let info = &entry.registration.info;
    let line = listener.map(|l| l.line).unwrap_or(0);
    let given = listener.map(|l| l.properties.as_slice()).unwrap_or(&[]);
    let mut properties = Vec::with_capacity(info.properties.len());
    for (name, value) in given {
        if info.property_spec(name).is_none() {
            return Err(PluginError::UnknownProperty {
                file: identity.file.clone(),
                line,
                name: info.name.clone(),
                property: name.clone(),
                known: if info.properties.is_empty() {
                    "none".into()
                } else {
                    info.properties
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        properties.push((name.clone(), value.clone()));
    }
    for spec in &info.properties {
        if let Some(default) = &spec.default {
            if !given
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(&spec.name))
            {
                properties.push((spec.name.clone(), default.clone()));
            }
        }
    }
    let context = ComponentContext {
        properties: Properties::new(properties),
        settings: settings.clone(),
        host: host.for_component(&info.name),
    };
    (entry.registration.construct)(context).map_err(|e| PluginError::Construct {
        file: identity.file.clone(),
        line,
        name: info.name.clone(),
        origin: entry.origin.to_string(),
        reason: e.to_string(),
    })
}

/// `grant_type` → handler: `SupportedGrantType` entries first, then what unmapped handlers
/// provide. An entry whose handler is not active leaves its grant type unsupported.
fn map_grant_types(
    registry: &Registry,
    identity: &Identity,
    handlers: Vec<(usize, Active<dyn GrantHandler>)>,
) -> Result<BTreeMap<String, Active<dyn GrantHandler>>, PluginError> {
    let mut map: BTreeMap<String, Active<dyn GrantHandler>> = BTreeMap::new();
    let mut mapped = vec![false; handlers.len()];
    for supported in &identity.grant_types {
        let Some(entry) = registry.find(&supported.handler) else {
            tracing::warn!(
                "{}: line {}: SupportedGrantType {:?} names {:?}, which no plugin provides; the grant is unsupported",
                identity.file.display(), supported.line, supported.name, supported.handler
            );
            continue;
        };
        if entry.registration.info.kind != ComponentKind::GrantHandler {
            return Err(PluginError::NotAGrantHandler {
                file: identity.file.clone(),
                line: supported.line,
                grant_type: supported.name.clone(),
                handler: supported.handler.clone(),
                kind: entry.registration.info.kind.to_string(),
            });
        }
        if let Some(i) = handlers
            .iter()
            .position(|(_, h)| h.name == entry.registration.info.name)
        {
            mapped[i] = true;
            map.insert(supported.name.clone(), handlers[i].1.clone());
        }
    }
    for (i, (index, handler)) in handlers.iter().enumerate() {
        if mapped[i] {
            continue;
        }
        for grant_type in &registry.entries()[*index].registration.info.provides {
            if let Some(existing) = map.get(grant_type) {
                return Err(PluginError::GrantTypeTwice {
                    file: identity.file.clone(),
                    grant_type: grant_type.clone(),
                    first: existing.name.clone(),
                    second: handler.name.clone(),
                });
            }
            map.insert(grant_type.clone(), handler.clone());
        }
    }
    Ok(map)
}
