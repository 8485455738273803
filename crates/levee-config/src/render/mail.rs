//! A mail listener's `protocol` and `[listener.mail]`, written back out.

use toml::{Table, Value};

use super::{duration, int, path};
use crate::model::{MailAuth, MailListener};

pub(super) fn listener(t: &mut Table, m: &MailListener) {
    t.insert("protocol".into(), m.protocol.as_str().into());
    let mut mail = Table::new();
    if let Some(g) = &m.greeting {
        mail.insert("greeting".into(), g.as_str().into());
    }
    match &m.auth {
        MailAuth::UserMap(p) => {
            mail.insert("user_map".into(), path(p));
        }
        MailAuth::Http(a) => {
            mail.insert("auth_http".into(), a.url.as_str().into());
            mail.insert("auth_http_timeout".into(), duration(a.timeout));
            mail.insert("auth_http_keepalive".into(), int(a.keepalive as u64));
            mail.insert("auth_negative_ttl".into(), duration(a.negative_ttl));
            let headers: Table = a
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            mail.insert("auth_http_header".into(), Value::Table(headers));
        }
    }
    for (name, d) in [
        ("auth_fail_delay", m.auth_fail_delay),
        ("preauth_timeout", m.preauth_timeout),
        ("idle_timeout", m.idle_timeout),
        ("backend_connect_timeout", m.backend_connect_timeout),
        ("backend_login_timeout", m.backend_login_timeout),
        ("auth_failure_window", m.auth_failure_window),
        ("move_grace", m.move_grace),
    ] {
        mail.insert(name.into(), duration(d));
    }
    mail.insert("max_errors".into(), int(u64::from(m.max_errors)));
    mail.insert("max_commands".into(), int(u64::from(m.max_commands)));
    mail.insert("max_line".into(), int(m.max_line as u64));
    mail.insert("max_literal".into(), int(m.max_literal));
    mail.insert(
        "max_auth_failures".into(),
        int(u64::from(m.max_auth_failures)),
    );
    mail.insert(
        "max_user_auth_failures".into(),
        int(u64::from(m.max_user_auth_failures)),
    );
    mail.insert(
        "max_sessions_per_user".into(),
        int(u64::from(m.max_sessions_per_user)),
    );
    for (name, b) in [
        ("forward_client_address", m.forward_client_address),
        ("backend_proxy_protocol", m.backend_proxy_protocol),
    ] {
        mail.insert(name.into(), Value::Boolean(b));
    }
    mail.insert("starttls".into(), m.starttls.as_str().into());
    if let Some(caps) = &m.smtp_capabilities {
        let list: Vec<Value> = caps.iter().map(|c| Value::from(c.as_str())).collect();
        mail.insert("smtp_capabilities".into(), Value::Array(list));
    }
    if let Some(master) = &m.master {
        mail.insert("master_user".into(), master.user.as_str().into());
        mail.insert("master_password".into(), master.password.as_str().into());
        mail.insert("master_separator".into(), master.separator.as_str().into());
    }
    t.insert("mail".into(), Value::Table(mail));
}
