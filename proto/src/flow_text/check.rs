//! Validation of matches and set-field actions that arrive through the API as messages
//! rather than text: the same field table and prerequisites the text parser applies.

use std::collections::BTreeMap;

use crate::v1::{Action, Field, FieldMatch, Match, SetField, Subfield, action};

use super::fields::{FieldDef, Syntax, canonical, field_def_i32};
use super::matches::canonical_vlan;
use super::protocol::{Ctx, prereq_text};
use super::scalar::be_u64;
use super::subfield::subfield_fits;

/// An API match or set-field refused by [`check_match`] or [`check_set_field`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Which rule it broke (what an OpenFlow error code is chosen from).
    pub kind: FieldErrorKind,
    /// Where: the field's name (`ip_dst`) or number when unknown.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The rule a refused field broke, one per check this module makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// No such field.
    Unknown,
    /// The value or mask does not have the field's width.
    Width,
    /// The value has bits beyond the field's width (a 3-bit PCP of 9).
    Value,
    /// A mask on a field that takes none.
    Mask,
    /// The field appears twice.
    Duplicate,
    /// The match does not pin the protocol the field lives in.
    Prerequisite,
    /// Fields that describe the same bits in two ways (`vlan_tci` with `vlan_vid`).
    Conflict,
    /// A set-field on a field that cannot be written, or a `port_name` where none fits.
    NotSettable,
}

fn field_err(
    kind: FieldErrorKind,
    field: impl Into<String>,
    message: impl Into<String>,
) -> FieldError {
    FieldError {
        kind,
        field: field.into(),
        message: message.into(),
    }
}

fn known(field: i32) -> Result<&'static FieldDef, FieldError> {
    field_def_i32(field).ok_or_else(|| {
        field_err(
            FieldErrorKind::Unknown,
            format!("field {field}"),
            "unknown field number",
        )
    })
}

/// The value and mask have the field's width and the value fits in its bits.
fn check_widths(d: &FieldDef, value: &[u8], mask: &[u8]) -> Result<(), FieldError> {
    if value.len() != d.width {
        return Err(field_err(
            FieldErrorKind::Width,
            d.name,
            format!("value must be {} bytes, got {}", d.width, value.len()),
        ));
    }
    if !mask.is_empty() && mask.len() != d.width {
        return Err(field_err(
            FieldErrorKind::Width,
            d.name,
            format!(
                "mask must be empty or {} bytes, got {}",
                d.width,
                mask.len()
            ),
        ));
    }
    if let Syntax::Int { bits, .. } = d.syntax
        && bits < 64
        && be_u64(value) >> bits != 0
    {
        return Err(field_err(
            FieldErrorKind::Value,
            d.name,
            format!("value does not fit in {bits} bits"),
        ));
    }
    Ok(())
}

/// Validates a match received through the API and returns its canonical form (fields
/// sorted, values masked, all-ones masks empty, all-zero masks dropped), or the first
/// problem: an unknown field, a value or mask of the wrong width, a mask on a field that
/// takes none, a value wider than the field, a field given twice, a missing prerequisite
/// (as Open vSwitch checks them), or `vlan_tci` mixed with `vlan_vid`/`vlan_pcp`.
/// A `port_name` is allowed only on `in_port` and `actset_output`, with an empty value.
pub fn check_match(m: &Match) -> Result<Match, FieldError> {
    let mut out: BTreeMap<i32, FieldMatch> = BTreeMap::new();
    for fm in &m.fields {
        let d = known(fm.field)?;
        if out.contains_key(&fm.field) {
            return Err(field_err(FieldErrorKind::Duplicate, d.name, "given twice"));
        }
        if !fm.port_name.is_empty() {
            let port_field = matches!(d.field, Field::InPort | Field::ActsetOutput);
            if !port_field || !fm.value.is_empty() || !fm.mask.is_empty() {
                return Err(field_err(
                    FieldErrorKind::NotSettable,
                    d.name,
                    "port_name is only valid on in_port and actset_output, without value or mask",
                ));
            }
            out.insert(fm.field, fm.clone());
            continue;
        }
        check_widths(d, &fm.value, &fm.mask)?;
        let (value, mask) = if fm.mask.is_empty() {
            (fm.value.clone(), Vec::new())
        } else {
            match canonical(d, fm.value.clone(), fm.mask.clone()) {
                Some(vm) => vm,
                None => continue,
            }
        };
        if !mask.is_empty() && !d.maskable {
            return Err(field_err(
                FieldErrorKind::Mask,
                d.name,
                "this field cannot be masked",
            ));
        }
        out.insert(
            fm.field,
            FieldMatch {
                field: fm.field,
                value,
                mask,
                port_name: String::new(),
            },
        );
    }
    let has = |f: Field| out.contains_key(&(f as i32));
    if has(Field::VlanTci) && (has(Field::VlanVid) || has(Field::VlanPcp)) {
        return Err(field_err(
            FieldErrorKind::Conflict,
            "vlan_tci",
            "vlan_tci cannot be combined with vlan_vid / vlan_pcp",
        ));
    }
    let mut fields: Vec<FieldMatch> = out.into_values().collect();
    canonical_vlan(&mut fields);
    let m = Match { fields };
    if let Some((name, why)) = super::ct::ct_tuple_prereq(&m.fields) {
        return Err(field_err(FieldErrorKind::Prerequisite, name, why));
    }
    let ctx = Ctx::of(&m);
    for fm in &m.fields {
        if let Some(d) = field_def_i32(fm.field)
            && !ctx.satisfies(d.prereq)
        {
            return Err(field_err(
                FieldErrorKind::Prerequisite,
                d.name,
                format!("requires {}", prereq_text(d.prereq)),
            ));
        }
    }
    Ok(m)
}

/// Validates a set-field action received through the API against the match context it
/// runs in (`ctx_match`: the flow's match): the field must exist and be settable, the
/// value and mask the field's width, and the field's protocol pinned by the match.
pub fn check_set_field(sf: &SetField, ctx_match: &Match) -> Result<(), FieldError> {
    check_set_field_in(sf, Ctx::of(ctx_match))
}

/// Validates a set-field action's field and value alone (it exists and is settable, the
/// value and mask have its width), for action lists without a match to check its
/// prerequisites against (group buckets, packet-outs: the datapath skips a rewrite of a
/// header the packet does not have).
pub fn check_set_field_value(sf: &SetField) -> Result<(), FieldError> {
    let d = known(sf.field)?;
    if !d.settable {
        return Err(field_err(
            FieldErrorKind::NotSettable,
            d.name,
            "this field cannot be set",
        ));
    }
    check_widths(d, &sf.value, &sf.mask)
}

fn check_set_field_in(sf: &SetField, ctx: Ctx) -> Result<(), FieldError> {
    check_set_field_value(sf)?;
    let d = known(sf.field)?;
    if !ctx.satisfies(d.prereq) {
        return Err(field_err(
            FieldErrorKind::Prerequisite,
            d.name,
            format!("set_field on it requires {}", prereq_text(d.prereq)),
        ));
    }
    Ok(())
}

/// Why a `ct` action is refused in a flow that does not match IPv4 or IPv6 (the text parser
/// and the API say the same).
pub(super) const CT_NEEDS_IP: &str = "`ct` needs a match on IPv4 or IPv6: add `ip` or `ipv6` (Open vSwitch refuses it too: actions are invalid with specified match)";

/// Validates the set-field actions of a flow's action list (see [`check_set_field`]), each
/// against the protocol the match pins as the actions before it change it (`push_mpls`
/// makes the packet MPLS, `pop_mpls:0x0800` makes it IPv4), as Open vSwitch checks them;
/// and that a `ct` action has the IPv4 or IPv6 match it needs and commits nothing in a
/// flow matching `ct_state=+inv`.
/// On failure, the index of the action at fault and the problem.
pub fn check_actions(actions: &[Action], m: &Match) -> Result<(), (usize, FieldError)> {
    if let Some(i) = super::ct::commit_on_invalid(&m.fields, actions) {
        return Err((
            i,
            field_err(
                FieldErrorKind::Prerequisite,
                "ct",
                super::ct::CT_COMMIT_INVALID,
            ),
        ));
    }
    check_actions_in(actions, Ctx::of(m))
}

fn check_actions_in(actions: &[Action], mut ctx: Ctx) -> Result<(), (usize, FieldError)> {
    for (i, a) in actions.iter().enumerate() {
        if let Some(action::Action::Clone(c)) = &a.action {
            if let Some(why) = c.actions.iter().find_map(not_in_clone) {
                return Err((i, field_err(FieldErrorKind::Value, "clone", why)));
            }
            check_actions_in(&c.actions, ctx).map_err(|(_, e)| (i, e))?;
        }
        if let Some(action::Action::SetField(sf)) = &a.action {
            check_set_field_in(sf, ctx).map_err(|e| (i, e))?;
        }
        if matches!(a.action, Some(action::Action::Ct(_))) && !ctx.ip() {
            return Err((
                i,
                field_err(FieldErrorKind::Prerequisite, "ct", CT_NEEDS_IP),
            ));
        }
        for (sf, write) in subfields(a).map_err(|e| (i, e))? {
            let d = check_subfield(sf, write).map_err(|e| (i, e))?;
            if !ctx.satisfies(d.prereq) {
                return Err((
                    i,
                    field_err(
                        FieldErrorKind::Prerequisite,
                        d.name,
                        format!("requires {}", prereq_text(d.prereq)),
                    ),
                ));
            }
        }
        ctx = ctx.after(a);
    }
    Ok(())
}

/// Validates the Nicira actions' fields and bit ranges alone (each inside its field, a
/// destination writable, a move's two ranges equally wide), for action lists without a
/// match (group buckets, packet-outs); [`check_actions`] also checks prerequisites.
pub fn check_subfields(a: &Action) -> Result<(), FieldError> {
    if let Some(action::Action::Clone(c)) = &a.action {
        if let Some(why) = c.actions.iter().find_map(not_in_clone) {
            return Err(field_err(FieldErrorKind::Value, "clone", why));
        }
        for inner in &c.actions {
            check_subfields(inner)?;
        }
    }
    for (sf, write) in subfields(a)? {
        check_subfield(sf, write)?;
    }
    Ok(())
}

/// The subfields an action reads or writes (true: writes).
fn subfields(a: &Action) -> Result<Vec<(&Subfield, bool)>, FieldError> {
    fn need<'a>(s: Option<&'a Subfield>, what: &str) -> Result<&'a Subfield, FieldError> {
        s.ok_or_else(|| {
            field_err(
                FieldErrorKind::Unknown,
                what.to_string(),
                "missing subfield",
            )
        })
    }
    Ok(match &a.action {
        Some(action::Action::Move(m)) => {
            let (src, dst) = (
                need(m.src.as_ref(), "move.src")?,
                need(m.dst.as_ref(), "move.dst")?,
            );
            if src.n_bits != dst.n_bits {
                return Err(field_err(
                    FieldErrorKind::Width,
                    "move",
                    format!(
                        "source is {} bits wide but destination is {} bits wide",
                        src.n_bits, dst.n_bits
                    ),
                ));
            }
            vec![(src, false), (dst, true)]
        }
        Some(action::Action::OutputField(o)) => {
            vec![(need(o.src.as_ref(), "output_field.src")?, false)]
        }
        Some(action::Action::StackPush(p)) => {
            vec![(need(p.src.as_ref(), "stack_push.src")?, false)]
        }
        Some(action::Action::StackPop(p)) => vec![(need(p.dst.as_ref(), "stack_pop.dst")?, true)],
        Some(action::Action::Multipath(m)) => {
            let dst = need(m.dst.as_ref(), "multipath.dst")?;
            if m.n_links == 0 || m.n_links > 65536 || m.basis > 0xffff {
                return Err(field_err(
                    FieldErrorKind::Value,
                    "multipath",
                    "n_links must be 1..=65536 and basis 0..=65535",
                ));
            }
            if dst.n_bits < 32 && u64::from(m.n_links - 1) >> dst.n_bits != 0 {
                return Err(field_err(
                    FieldErrorKind::Width,
                    "multipath.dst",
                    "too narrow for n_links",
                ));
            }
            vec![(dst, true)]
        }
        _ => Vec::new(),
    })
}

fn check_subfield(sf: &Subfield, write: bool) -> Result<&'static FieldDef, FieldError> {
    let d = known(sf.field)?;
    if subfield_fits(sf).is_none() {
        return Err(field_err(
            FieldErrorKind::Width,
            d.name,
            format!(
                "bits {}..{} are not inside the field",
                sf.offset,
                u64::from(sf.offset) + u64::from(sf.n_bits)
            ),
        ));
    }
    if write && !d.settable {
        return Err(field_err(
            FieldErrorKind::NotSettable,
            d.name,
            "this field cannot be written",
        ));
    }
    Ok(d)
}

/// Why an action may not run inside a clone (see `Clone` in the API).
pub(super) fn not_in_clone(a: &Action) -> Option<&'static str> {
    match a.action.as_ref()? {
        action::Action::PushVlan(_)
        | action::Action::PopVlan(_)
        | action::Action::PushMpls(_)
        | action::Action::PopMpls(_)
        | action::Action::SetVlanVid(_)
        | action::Action::SetVlanPcp(_) => {
            Some("this switch does not add or remove headers on a copy of the packet")
        }
        action::Action::SetQueue(_) | action::Action::Enqueue(_) | action::Action::PopQueue(_) => {
            Some("this switch does not change the queue of a copy of the packet")
        }
        action::Action::DecTtl(_) | action::Action::DecMplsTtl(_) => {
            Some("a TTL that runs out drops the packet here, not only its copy")
        }
        // With a table the tracked packet is a copy that goes on elsewhere; without one
        // (and with ct_clear) the tracker's verdict and NAT would outlive the clone.
        action::Action::Ct(c) if c.table.is_none() => {
            Some("ct without table= changes the packet itself, not only its copy")
        }
        action::Action::CtClear(_) => Some("ct_clear changes the packet itself, not only its copy"),
        action::Action::Clone(c) => c.actions.iter().find_map(not_in_clone),
        _ => None,
    }
}
