//! `identity.xml`: which components are on, in what order, with what properties (CONTRACT §4).
//!
//! The file keeps WSO2 Identity Server's shape so that the snippets of WSO2's documentation can
//! be pasted in unchanged — and so that a whole WSO2 `identity.xml` loads: of its hundreds of
//! elements we read only `OAuth/SupportedGrantTypes`, `EventListeners` and `CacheManager`
//! (directly under `Server` as in the contract, or inside `CacheConfig` as in WSO2's own file).
//! Everything else is skipped with a warning rather than refused.
//!
//! What we do read is checked strictly, because a mistake there silently changes security
//! behaviour: a misspelt `enable` or a repeated property is an error naming the line. Property
//! names are kept as written; matching them case-insensitively (WSO2's docs and code spell
//! `preventTokenReuse` both ways) is the component's business.

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::xml::{self, Element};

/// The parts of `identity.xml` Tollgate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The file as given (for messages).
    pub file: PathBuf,
    /// `<Server><OAuth><SupportedGrantTypes><SupportedGrantType>`, in document order.
    pub grant_types: Vec<SupportedGrantType>,
    /// `<Server><EventListeners><EventListener>`, in document order.
    pub listeners: Vec<EventListener>,
    /// `<Server>[<CacheConfig>]<CacheManager name=…><Cache …/>`, in document order.
    pub caches: Vec<CacheConfig>,
    /// Elements skipped because Tollgate does not use them, each naming file and line.
    pub warnings: Vec<String>,
}

/// Maps a `grant_type` value to the grant handler component named `handler`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedGrantType {
    /// `GrantTypeName`, e.g. `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    pub name: String,
    /// `GrantTypeHandlerImplClass`: a component name or alias.
    pub handler: String,
    pub line: usize,
}

/// Turns a component on or off and passes it properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventListener {
    /// The `type` attribute (WSO2's handler kind); may be empty.
    pub type_: String,
    /// The component name or alias.
    pub name: String,
    /// Lower first among components of one kind.
    pub order_id: Option<i32>,
    /// Absent means `true`.
    pub enable: bool,
    /// `<Property name="N">V</Property>`, value trimmed, in document order, names as written.
    pub properties: Vec<(String, String)>,
    pub line: usize,
}

/// Size and lifetime of the cache of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The enclosing `CacheManager`'s `name`.
    pub manager: String,
    pub name: String,
    pub enable: bool,
    pub timeout_minutes: Option<u64>,
    pub capacity: Option<u64>,
    /// `isDistributed`.
    pub distributed: bool,
    pub line: usize,
}

impl Identity {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Identity, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Identity::parse(text.strip_prefix('\u{feff}').unwrap_or(&text), path)
    }

    /// Parses `identity.xml` text; `file` only names it in errors and warnings.
    pub fn parse(text: &str, file: &Path) -> Result<Identity, ConfigError> {
        let root = xml::parse(text, file)?;
        let mut identity = Identity {
            file: file.to_owned(),
            ..Identity::default()
        };
        if root.name != "Server" {
            return Err(identity.error(
                &root,
                format!("root element is <{}>, expected <Server>", root.name),
            ));
        }
        for section in &root.children {
            match section.name.as_str() {
                "OAuth" => {
                    for child in &section.children {
                        if child.name == "SupportedGrantTypes" {
                            for grant in &child.children {
                                if grant.name == "SupportedGrantType" {
                                    identity.add_grant_type(grant)?;
                                } else {
                                    identity.skip(grant);
                                }
                            }
                        } else {
                            identity.skip(child);
                        }
                    }
                }
                "EventListeners" => {
                    for child in &section.children {
                        if child.name == "EventListener" {
                            let listener = identity.listener_of(child)?;
                            identity.listeners.push(listener);
                        } else {
                            identity.skip(child);
                        }
                    }
                }
                "CacheConfig" => {
                    for child in &section.children {
                        if child.name == "CacheManager" {
                            identity.add_caches(child)?;
                        } else {
                            identity.skip(child);
                        }
                    }
                }
                "CacheManager" => identity.add_caches(section)?,
                _ => identity.skip(section),
            }
        }
        Ok(identity)
    }

    /// The last listener named exactly `name`.
    pub fn listener(&self, name: &str) -> Option<&EventListener> {
        self.listeners.iter().rev().find(|l| l.name == name)
    }

    /// The last cache named exactly `name` (whatever its manager).
    pub fn cache(&self, name: &str) -> Option<&CacheConfig> {
        self.caches.iter().rev().find(|c| c.name == name)
    }

    fn error(&self, at: &Element, message: String) -> ConfigError {
        ConfigError::Identity {
            file: self.file.clone(),
            line: at.line,
            message,
        }
    }

    fn skip(&mut self, el: &Element) {
        self.warnings.push(format!(
            "{}: line {}: <{}> is not used by Tollgate; skipped",
            self.file.display(),
            el.line,
            el.name
        ));
    }

    fn add_grant_type(&mut self, el: &Element) -> Result<(), ConfigError> {
        let child_text = |name: &str| {
            el.children
                .iter()
                .rev()
                .find(|c| c.name == name)
                .map(|c| c.text.trim())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    self.error(
                        el,
                        format!("SupportedGrantType: <{name}> is missing or empty"),
                    )
                })
        };
        let grant = SupportedGrantType {
            name: child_text("GrantTypeName")?.to_owned(),
            handler: child_text("GrantTypeHandlerImplClass")?.to_owned(),
            line: el.line,
        };
        if let Some(first) = self.grant_types.iter().find(|g| g.name == grant.name) {
            return Err(self.error(
                el,
                format!(
                    "SupportedGrantType {:?} is already defined at line {}",
                    grant.name, first.line
                ),
            ));
        }
        self.grant_types.push(grant);
        Ok(())
    }

    fn listener_of(&self, el: &Element) -> Result<EventListener, ConfigError> {
        let name = match el.attr("name").map(str::trim) {
            Some(name) if !name.is_empty() => name,
            _ => return Err(self.error(el, "EventListener: the name attribute is required".into())),
        };
        let fail = |at: &Element, message: String| {
            Err(self.error(at, format!("EventListener {name:?}: {message}")))
        };
        let order_id = match el.attr("orderId") {
            None => None,
            Some(v) => match v.trim().parse() {
                Ok(n) => Some(n),
                Err(_) => return fail(el, format!("orderId {v:?} is not an integer")),
            },
        };
        let enable = match bool_attr(el, "enable", true) {
            Ok(b) => b,
            Err(m) => return fail(el, m),
        };
        let mut properties: Vec<(String, String, usize)> = Vec::new();
        for prop in &el.children {
            if prop.name != "Property" {
                return fail(
                    prop,
                    format!("<{}> is not allowed here, only <Property>", prop.name),
                );
            }
            let Some(prop_name) = prop.attr("name").map(str::trim).filter(|n| !n.is_empty()) else {
                return fail(prop, "<Property> needs a name attribute".into());
            };
            if let Some(child) = prop.children.first() {
                return fail(
                    child,
                    format!(
                        "Property {prop_name:?} must hold text, not <{}>",
                        child.name
                    ),
                );
            }
            if let Some((first, _, line)) = properties
                .iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(prop_name))
            {
                return fail(
                    prop,
                    format!("property {prop_name:?} repeats {first:?} of line {line} (names are case-insensitive)"),
                );
            }
            properties.push((prop_name.to_owned(), prop.text.trim().to_owned(), prop.line));
        }
        Ok(EventListener {
            type_: el.attr("type").unwrap_or_default().trim().to_owned(),
            name: name.to_owned(),
            order_id,
            enable,
            properties: properties.into_iter().map(|(n, v, _)| (n, v)).collect(),
            line: el.line,
        })
    }

    fn add_caches(&mut self, manager: &Element) -> Result<(), ConfigError> {
        let manager_name = manager.attr("name").unwrap_or_default().trim();
        for el in &manager.children {
            if el.name != "Cache" {
                self.skip(el);
                continue;
            }
            let Some(name) = el.attr("name").map(str::trim).filter(|n| !n.is_empty()) else {
                return Err(self.error(el, "Cache: the name attribute is required".into()));
            };
            let fail = |message: String| self.error(el, format!("Cache {name:?}: {message}"));
            let cache = CacheConfig {
                manager: manager_name.to_owned(),
                name: name.to_owned(),
                enable: bool_attr(el, "enable", true).map_err(fail)?,
                timeout_minutes: u64_attr(el, "timeout").map_err(fail)?,
                capacity: u64_attr(el, "capacity").map_err(fail)?,
                distributed: bool_attr(el, "isDistributed", false).map_err(fail)?,
                line: el.line,
            };
            self.caches.push(cache);
        }
        Ok(())
    }
}

/// `true`/`false` in any case; `default` when absent.
fn bool_attr(el: &Element, name: &str, default: bool) -> Result<bool, String> {
    match el.attr(name) {
        None => Ok(default),
        Some(v) if v.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(format!("{name} {v:?} is not true or false")),
    }
}

fn u64_attr(el: &Element, name: &str) -> Result<Option<u64>, String> {
    el.attr(name)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{name} {v:?} is not a non-negative integer"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "conf/identity.xml";

    /// CONTRACT §4, verbatim.
    const CONTRACT_EXAMPLE: &str = r#"<Server>
  <OAuth>
    <SupportedGrantTypes>
      <SupportedGrantType>
        <GrantTypeName>urn:ietf:params:oauth:grant-type:jwt-bearer</GrantTypeName>
        <GrantTypeHandlerImplClass>org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler</GrantTypeHandlerImplClass>
      </SupportedGrantType>
    </SupportedGrantTypes>
  </OAuth>
  <EventListeners>
    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler"
                   orderId="100" enable="true">
      <Property name="PreventTokenReuse">true</Property>
      <Property name="IATValidityPeriodInMinutes">30</Property>
    </EventListener>
    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator"
                   orderId="899" enable="true">
      <Property name="preventTokenReuse">true</Property>
      <Property name="RejectBeforeInMinutes">100</Property>
      <Property name="TokenEndPointAlias">https://localhost:9443/oauth2/token</Property>
    </EventListener>
    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator"
                   orderId="10" enable="true"/>
  </EventListeners>
  <CacheManager name="IdentityApplicationManagementCacheManager">
    <Cache name="PrivateKeyJWT" enable="true" timeout="10" capacity="5000" isDistributed="false"/>
  </CacheManager>
</Server>
"#;

    const PKJWT: &str =
        "org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator";

    fn parse(text: &str) -> Result<Identity, ConfigError> {
        Identity::parse(text, Path::new(FILE))
    }

    fn err(text: &str) -> String {
        parse(text).expect_err("should fail").to_string()
    }

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// `body` inside `<Server><EventListeners>`, starting on line 3.
    fn listeners(body: &str) -> String {
        format!("<Server>\n<EventListeners>\n{body}\n</EventListeners>\n</Server>\n")
    }

    #[test]
    fn contract_example_parses() {
        let id = parse(CONTRACT_EXAMPLE).unwrap();
        assert_eq!(id.file, PathBuf::from(FILE));
        assert!(id.warnings.is_empty(), "{:?}", id.warnings);
        assert_eq!(
            id.grant_types,
            [SupportedGrantType {
                name: "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                handler: "org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler".into(),
                line: 4,
            }]
        );
        assert_eq!(id.listeners.len(), 3);
        let jwt = &id.listeners[0];
        assert_eq!(
            jwt.type_,
            "org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
        );
        assert_eq!(jwt.order_id, Some(100));
        assert!(jwt.enable);
        assert_eq!(jwt.line, 11);
        assert_eq!(
            jwt.properties,
            props(&[
                ("PreventTokenReuse", "true"),
                ("IATValidityPeriodInMinutes", "30")
            ])
        );
        let pk = id.listener(PKJWT).unwrap();
        assert_eq!(pk.order_id, Some(899));
        // Both WSO2 spellings are kept as written.
        assert_eq!(
            pk.properties,
            props(&[
                ("preventTokenReuse", "true"),
                ("RejectBeforeInMinutes", "100"),
                ("TokenEndPointAlias", "https://localhost:9443/oauth2/token"),
            ])
        );
        let jwks = &id.listeners[2];
        assert_eq!(jwks.order_id, Some(10));
        assert!(jwks.properties.is_empty());
        assert_eq!(
            id.cache("PrivateKeyJWT"),
            Some(&CacheConfig {
                manager: "IdentityApplicationManagementCacheManager".into(),
                name: "PrivateKeyJWT".into(),
                enable: true,
                timeout_minutes: Some(10),
                capacity: Some(5000),
                distributed: false,
                line: 29,
            })
        );
        assert_eq!(id.caches.len(), 1);
        assert_eq!(id.cache("privatekeyjwt"), None);
    }

    #[test]
    fn seed_004_snippet_parses_when_wrapped() {
        // The WSO2 5.5.0 documentation's snippets (reference 004), closed and wrapped.
        let id = parse(
            r#"<Server>
<EventListeners>
     <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"  name="org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator" orderId="899" enable="true">
      <Property name="preventTokenReuse">true</Property>
      <Property name="RejectBeforeInMinutes">100</Property>
      <Property name="TokenEndPointAlias">sample url</Property>
     </EventListener>
</EventListeners>
        <CacheManager name="IdentityApplicationManagementCacheManager">
	    <Cache name="PrivateKeyJWT" enable="true" timeout="10" capacity="5000" isDistributed="false"/>
        </CacheManager>
</Server>"#,
        )
        .unwrap();
        let pk = id.listener(PKJWT).unwrap();
        assert_eq!(
            pk.properties,
            props(&[
                ("preventTokenReuse", "true"),
                ("RejectBeforeInMinutes", "100"),
                ("TokenEndPointAlias", "sample url"),
            ])
        );
        let cache = id.cache("PrivateKeyJWT").unwrap();
        assert_eq!(
            (cache.timeout_minutes, cache.capacity),
            (Some(10), Some(5000))
        );
    }

    #[test]
    fn wso2_style_file_with_namespace_and_unused_elements() {
        let id = parse(
            r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!--
  ~ Copyright (c) 2005-2018, WSO2 Inc. (http://www.wso2.org) All Rights Reserved.
  -->
<Server xmlns="http://wso2.org/projects/carbon/carbon.xml">
    <JDBCPersistenceManager>
        <DataSource>
            <Name>jdbc/WSO2IdentityDB</Name>
        </DataSource>
        <SkipDBSchemaCreation>false</SkipDBSchemaCreation>
    </JDBCPersistenceManager>
    <!-- Security configurations -->
    <OAuth>
        <OAuth2TokenEPUrl>${carbon.protocol}://${carbon.host}:${carbon.management.port}/oauth2/token</OAuth2TokenEPUrl>
        <SupportedGrantTypes>
            <!-- Supported versions: authorization_code, password, ... -->
            <SupportedGrantType>
                <GrantTypeName>authorization_code</GrantTypeName>
                <GrantTypeHandlerImplClass>org.wso2.carbon.identity.oauth2.token.handlers.grant.AuthorizationCodeGrantHandler</GrantTypeHandlerImplClass>
            </SupportedGrantType>
            <SupportedGrantType>
                <GrantTypeName>urn:ietf:params:oauth:grant-type:jwt-bearer</GrantTypeName>
                <GrantTypeHandlerImplClass>
                    org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler
                </GrantTypeHandlerImplClass>
                <GrantTypeValidatorImplClass>org.wso2.carbon.identity.oauth2.grant.jwt.JWTGrantValidator</GrantTypeValidatorImplClass>
                <IdTokenAllowed>true</IdTokenAllowed>
            </SupportedGrantType>
        </SupportedGrantTypes>
    </OAuth>
    <EventListeners>
        <EventListener type="org.wso2.carbon.user.core.listener.UserOperationEventListener"
                       name="org.wso2.carbon.identity.mgt.IdentityMgtEventListener"
                       orderId="50" enable="false"/>
        <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                       name="org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator"
                       orderId="899" enable="TRUE">
            <Property name="PreventTokenReuse">false</Property>
            <Property name="TokenEndpointAlias">https://a.example/t?x=1&amp;y=2</Property>
        </EventListener>
    </EventListeners>
    <CacheConfig>
        <CacheManager name="IdentityApplicationManagementCacheManager">
            <Cache name="AppAuthFrameworkSessionContextCache" enable="false" timeout="1" capacity="5000" isDistributed="false"/>
            <Cache name="PrivateKeyJWT" enable="true" timeout="10" capacity="5000" isDistributed="true"/>
        </CacheManager>
    </CacheConfig>
    <Recovery><ReCaptcha><Enabled>false</Enabled></ReCaptcha></Recovery>
</Server>
"#,
        )
        .unwrap();
        assert_eq!(
            id.warnings,
            [
                "conf/identity.xml: line 6: <JDBCPersistenceManager> is not used by Tollgate; skipped",
                "conf/identity.xml: line 14: <OAuth2TokenEPUrl> is not used by Tollgate; skipped",
                "conf/identity.xml: line 48: <Recovery> is not used by Tollgate; skipped",
            ]
        );
        assert_eq!(id.grant_types.len(), 2);
        assert_eq!(
            id.grant_types[1].handler,
            "org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler"
        );
        assert!(!id.listeners[0].enable);
        let pk = id.listener(PKJWT).unwrap();
        assert!(pk.enable);
        assert_eq!(
            pk.properties,
            props(&[
                ("PreventTokenReuse", "false"),
                ("TokenEndpointAlias", "https://a.example/t?x=1&y=2"),
            ])
        );
        assert_eq!(id.caches.len(), 2);
        let cache = id.cache("PrivateKeyJWT").unwrap();
        assert!(cache.distributed && cache.enable);
        assert!(
            !id.cache("AppAuthFrameworkSessionContextCache")
                .unwrap()
                .enable
        );
    }

    #[test]
    fn listener_defaults_and_last_one_wins() {
        let id = parse(&listeners(
            "<EventListener name=\"A\"/>\n<EventListener name=\"A\" enable=\"false\" orderId=\" -3 \"/>",
        ))
        .unwrap();
        let first = &id.listeners[0];
        assert_eq!(
            (first.type_.as_str(), first.order_id, first.enable),
            ("", None, true)
        );
        let a = id.listener("A").unwrap();
        assert_eq!((a.order_id, a.enable, a.line), (Some(-3), false, 4));
        assert_eq!(id.listener("a"), None);
    }

    #[test]
    fn listener_errors_name_file_line_and_listener() {
        for (body, expect) in [
            (
                "<EventListener name=\"X\">\n<Property name=\"a\">1</Property>\n<Foo/>\n</EventListener>",
                "line 5: EventListener \"X\": <Foo> is not allowed here",
            ),
            (
                "<EventListener name=\"X\">\n<Property>1</Property>\n</EventListener>",
                "line 4: EventListener \"X\": <Property> needs a name attribute",
            ),
            (
                "<EventListener name=\"X\">\n<Property name=\"preventTokenReuse\">1</Property>\n<Property name=\"PreventTokenReuse\">2</Property>\n</EventListener>",
                "line 5: EventListener \"X\": property \"PreventTokenReuse\" repeats \"preventTokenReuse\" of line 4",
            ),
            (
                "<EventListener name=\"X\" orderId=\"abc\"/>",
                "line 3: EventListener \"X\": orderId \"abc\" is not an integer",
            ),
            (
                "<EventListener name=\"X\" enable=\"yes\"/>",
                "line 3: EventListener \"X\": enable \"yes\" is not true or false",
            ),
            (
                "<EventListener type=\"t\"/>",
                "line 3: EventListener: the name attribute is required",
            ),
            (
                "<EventListener name=\"X\">\n<Property name=\"a\"><b/></Property>\n</EventListener>",
                "line 4: EventListener \"X\": Property \"a\" must hold text",
            ),
        ] {
            let e = err(&listeners(body));
            assert!(e.starts_with(&format!("{FILE}: {expect}")), "{body}: {e}");
        }
    }

    #[test]
    fn grant_type_errors() {
        let grant = |inner: &str| {
            format!("<Server><OAuth><SupportedGrantTypes>\n{inner}\n</SupportedGrantTypes></OAuth></Server>")
        };
        let e = err(&grant(
            "<SupportedGrantType><GrantTypeName>x</GrantTypeName></SupportedGrantType>",
        ));
        assert!(
            e.contains("line 2: SupportedGrantType: <GrantTypeHandlerImplClass> is missing"),
            "{e}"
        );
        let e = err(&grant(
            "<SupportedGrantType><GrantTypeName> </GrantTypeName><GrantTypeHandlerImplClass>h</GrantTypeHandlerImplClass></SupportedGrantType>",
        ));
        assert!(
            e.contains("line 2: SupportedGrantType: <GrantTypeName> is missing or empty"),
            "{e}"
        );
        let one = "<SupportedGrantType><GrantTypeName>x</GrantTypeName><GrantTypeHandlerImplClass>h</GrantTypeHandlerImplClass></SupportedGrantType>";
        let e = err(&grant(&format!("{one}\n{one}")));
        assert!(
            e.contains("line 3: SupportedGrantType \"x\" is already defined at line 2"),
            "{e}"
        );
    }

    #[test]
    fn cache_errors() {
        for (attrs, expect) in [
            (
                "name=\"C\" timeout=\"-1\"",
                "Cache \"C\": timeout \"-1\" is not a non-negative integer",
            ),
            (
                "name=\"C\" capacity=\"lots\"",
                "Cache \"C\": capacity \"lots\" is not a non-negative integer",
            ),
            (
                "name=\"C\" enable=\"1\"",
                "Cache \"C\": enable \"1\" is not true or false",
            ),
            (
                "name=\"C\" isDistributed=\"no\"",
                "Cache \"C\": isDistributed \"no\" is not true or false",
            ),
            ("timeout=\"1\"", "Cache: the name attribute is required"),
        ] {
            let e = err(&format!(
                "<Server>\n<CacheManager name=\"M\">\n<Cache {attrs}/>\n</CacheManager>\n</Server>"
            ));
            assert!(
                e.starts_with(&format!("{FILE}: line 3: {expect}")),
                "{attrs}: {e}"
            );
        }
        let id =
            parse("<Server><CacheManager><Cache name=\"C\"/></CacheManager></Server>").unwrap();
        let c = id.cache("C").unwrap();
        assert_eq!(
            (
                c.manager.as_str(),
                c.enable,
                c.timeout_minutes,
                c.capacity,
                c.distributed
            ),
            ("", true, None, None, false)
        );
    }

    #[test]
    fn wrong_root_and_bad_xml_fail_with_line() {
        let e = err("<!-- x -->\n<Config/>");
        assert_eq!(
            e,
            "conf/identity.xml: line 2: root element is <Config>, expected <Server>"
        );
        let e = err(
            "<Server>\n<EventListeners>\n<EventListener name=\"X\">\n</EventListeners>\n</Server>",
        );
        assert!(e.starts_with("conf/identity.xml: line 4: "), "{e}");
    }

    #[test]
    fn load_reports_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.xml");
        let e = Identity::load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        std::fs::write(&path, format!("\u{feff}{CONTRACT_EXAMPLE}")).unwrap();
        assert_eq!(Identity::load(&path).unwrap().listeners.len(), 3);
    }

    mod props {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::select;

        /// Pieces of identity.xml, and of XML that is not.
        fn xml_like() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                4 => select(vec![
                    "<Server>", "</Server>", "<Server xmlns=\"http://wso2.org/projects/carbon/carbon.xml\">",
                    "<EventListeners>", "</EventListeners>", "<EventListener ", "</EventListener>",
                    "name=\"jwks-validator\" ", "type=\"t\" ", "orderId=\"", "enable=\"", "\" ",
                    "\"", ">", "/>", "<Property name=\"p\">", "</Property>", "<OAuth>", "</OAuth>",
                    "<SupportedGrantTypes>", "</SupportedGrantTypes>", "<SupportedGrantType>",
                    "</SupportedGrantType>", "<GrantTypeName>", "</GrantTypeName>",
                    "<GrantTypeHandlerImplClass>", "</GrantTypeHandlerImplClass>", "<CacheConfig>",
                    "</CacheConfig>", "<CacheManager name=\"m\">", "</CacheManager>",
                    "<Cache name=\"PrivateKeyJWT\" ", "timeout=\"", "capacity=\"", "isDistributed=\"",
                    "&amp;", "&#x0;", "&#1114112;", "&unknown;", "<![CDATA[", "]]>", "<!--", "-->",
                    "<?xml version=\"1.0\"?>", "<!DOCTYPE x [<!ENTITY a \"b\">]>", "ns:", "xmlns:ns=\"u\" ",
                    "true", "false", "-1", "18446744073709551616", "\n",
                ])
                .prop_map(str::to_owned),
                1 => "(?s).{0,6}",
            ];
            vec(piece, 0..48).prop_map(|pieces| pieces.concat())
        }

        /// The parse succeeds, or its error names the file.
        fn names_the_file(text: &str) -> Result<(), TestCaseError> {
            if let Err(e) = parse(text) {
                let message = e.to_string();
                prop_assert!(message.starts_with(&format!("{FILE}: ")), "{message}");
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn any_text_parses_or_names_the_file(text in "(?s).{0,256}") {
                names_the_file(&text)?;
            }

            #[test]
            fn xml_like_text_parses_or_names_the_file(text in xml_like()) {
                names_the_file(&text)?;
            }

            #[test]
            fn the_example_cut_and_spliced_parses_or_names_the_file(
                cut in any::<prop::sample::Index>(),
                len in 0usize..64,
                insert in "(?s).{0,16}",
            ) {
                let start = cut.index(CONTRACT_EXAMPLE.len());
                let end = (start + len).min(CONTRACT_EXAMPLE.len());
                let (Some(head), Some(tail)) = (CONTRACT_EXAMPLE.get(..start), CONTRACT_EXAMPLE.get(end..)) else {
                    return Ok(());
                };
                names_the_file(&format!("{head}{insert}{tail}"))?;
            }
        }
    }
}
