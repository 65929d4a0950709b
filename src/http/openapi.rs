//! The OpenAPI document, generated from the handlers' annotations so it cannot
//! drift from the code (a test calls every operation it lists).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    agents, approvals, instances, integrations, messages, output, sse, stream, system, tasks, triggers, webhooks,
    workspaces,
};

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Run many command-line agents side by side in pseudo-terminals; watch and steer them over HTTP."),
    paths(
        system::healthz, system::metrics, system::openapi, system::session_status, system::create_session, system::delete_session, system::delete_sessions, system::create_login_link,
        tasks::list, tasks::create, tasks::get, tasks::update, tasks::delete,
        agents::list, agents::create, agents::get, agents::update, agents::delete, agents::list_instances,
        instances::create, instances::list, instances::show, instances::update, instances::remove,
        instances::input, instances::resize, output::output,
        messages::list, messages::create, messages::complete, messages::batch,
        sse::subscribe, stream::stream, tasks::run,
        webhooks::list, webhooks::create, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::deliveries, webhooks::redeliver, triggers::trigger,
        workspaces::changes, workspaces::orphans, workspaces::delete_orphan,
        integrations::presets, integrations::report, integrations::resume, approvals::list, approvals::decide,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    tags(
        (name = "tasks", description = "The task list (tasks.db)"),
        (name = "agents", description = "Agents and their settings (agents.db)"),
        (name = "instances", description = "Running agents in their terminals"),
        (name = "messages", description = "Replies and questions between people and agents"),
        (name = "approvals", description = "Agents' permission requests, decided from anywhere"),
        (name = "events", description = "Every change as Server-Sent Events"),
        (name = "webhooks", description = "Signed outbound deliveries and inbound triggers"),
        (name = "service", description = "Health, metrics, sessions"),
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.info.license = None;
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}
