"""Who is using the app: single-user mode (local machine only), local accounts, or OIDC via st.login."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import streamlit as st

from workbench.access import Actor, is_issued, local_admin
from workbench.access.accounts import actor_for_identity, authenticate
from workbench.access.session import has_accounts
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.ui.errors import message_for

ACTOR_KEY = "wb_actor"
MODE_KEY = "wb_auth_mode"
_FORWARD_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded")
ROLE_COLORS = {"viewer": "gray", "analyst": "blue", "lead": "violet", "auditor": "orange", "admin": "red"}


def _is_loopback(address: str) -> bool:
    address = address.strip().strip('"').strip("[]")
    if address.lower().startswith("for="):
        address = address[4:].strip('"').strip("[]")
    if address.count(":") == 1 and "." in address:  # host:port
        address = address.split(":")[0]
    if address in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A dual-stack server (Streamlit binds `::`) reports IPv4 peers as ::ffff:127.0.0.1, which Python 3.11
    # does not count as loopback.
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def is_local_client(ip: str | None, headers: Mapping[str, str] | None) -> bool:
    """Whether the browser is on this machine: a loopback peer and no proxy header naming another address."""
    if ip is not None and not _is_loopback(ip):
        return False
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    for name in _FORWARD_HEADERS:
        value = lowered.get(name)
        if not value:
            continue
        for part in value.split(","):
            for piece in part.split(";"):
                piece = piece.strip()
                if name != "forwarded" or piece.lower().startswith("for="):
                    if not _is_loopback(piece):
                        return False
    return True


def _client() -> tuple[str | None, Mapping[str, str]]:
    try:
        ip = st.context.ip_address
        headers = dict(st.context.headers or {})
    except Exception:  # noqa: BLE001 - no client context outside a browser session
        return None, {}
    # Outside a real browser session (AppTest, bare mode) the runtime has no client address.
    return (ip if isinstance(ip, str) else None), {str(k): str(v) for k, v in headers.items()}


def oidc_configured() -> bool:
    """Whether Streamlit's secrets configure an OIDC provider for st.login."""
    try:
        auth = st.secrets.get("auth")
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False
    return bool(auth) and bool(auth.get("client_id") or any(isinstance(v, Mapping) for v in auth.values()))


def oidc_identities(claims: Mapping[str, object]) -> list[str]:
    """The identities st.login's claims offer for mapping to an account: the e-mail (unless the provider
    says it is unverified), then the subject id."""
    email = claims.get("email")
    verified = claims.get("email_verified", True) not in (False, "false", "False")
    out = [str(email)] if email and verified else []
    return out + ([str(claims["sub"])] if claims.get("sub") else [])


def current_actor() -> Actor | None:
    """The actor of this browser session, once signed in (or the OS user in single-user mode)."""
    return st.session_state.get(ACTOR_KEY)


def gate(ws: Workspace) -> Actor:
    """Sign the session in (or refuse it) and return its actor; stops the script until that is settled."""
    if not has_accounts(ws):
        ip, headers = _client()
        if not is_local_client(ip, headers):
            st.error("This workspace runs in single-user mode (no accounts), so the app serves only the machine "
                     "it runs on. Open it on that machine, or have an admin create accounts "
                     "(`workbench user add NAME --role admin`) to allow sign-in from other machines.", icon="🔒")
            st.stop()
        actor = local_admin()
        st.session_state[ACTOR_KEY], st.session_state[MODE_KEY] = actor, "single-user"
        return actor
    actor = current_actor()
    if actor is not None and st.session_state.get(MODE_KEY) in ("accounts", "oidc"):
        if is_issued(ws, actor):
            return actor
        # Disabled, removed or given another role since sign-in (or never signed in): sign in again.
        for key in (ACTOR_KEY, MODE_KEY):
            st.session_state.pop(key, None)
        st.cache_data.clear()
        st.warning("Your account changed since you signed in: sign in again.", icon="🔒")
    if oidc_configured():
        return _oidc_gate(ws)
    return _password_gate(ws)


def _password_gate(ws: Workspace) -> Actor:
    st.title("Sign in to the workbench")
    st.caption(f"Workspace `{ws.path.name}` has accounts: sign in with yours. Failed attempts are audited and "
               "repeated failures lock the account.")
    with st.form("signin"):
        user = st.text_input("User", key="signin_user")
        password = st.text_input("Password", type="password", key="signin_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if not user or not password:
            st.warning("Enter a user name and a password.")
        else:
            try:
                actor = authenticate(ws, user, password)
            except WorkbenchError as exc:
                st.error(message_for(exc), icon="🔒")
            else:
                st.session_state[ACTOR_KEY], st.session_state[MODE_KEY] = actor, "accounts"
                st.session_state.pop("signin_password", None)
                st.rerun()
    st.stop()
    raise AssertionError("unreachable")


def _oidc_gate(ws: Workspace) -> Actor:
    if not st.user.is_logged_in:
        st.title("Sign in to the workbench")
        st.caption("This workspace signs in through your organisation's identity provider.")
        if st.button("Sign in", type="primary"):
            st.login()
        st.stop()
    identities = oidc_identities(st.user.to_dict())
    shown_as = next((i for i in identities if i), "an unnamed identity")
    try:
        actor = actor_for_identity(ws, *identities)
    except WorkbenchError as exc:
        st.error(f"Signed in as {shown_as}, but the workspace refuses it: {message_for(exc)}", icon="🔒")
        if st.button("Sign out"):
            st.logout()
        st.stop()
    st.session_state[ACTOR_KEY], st.session_state[MODE_KEY] = actor, "oidc"
    return actor


def sign_out() -> None:
    """Forget this session's sign-in (and leave the identity provider when signed in through OIDC)."""
    mode = st.session_state.get(MODE_KEY)
    for key in (ACTOR_KEY, MODE_KEY):
        st.session_state.pop(key, None)
    st.cache_data.clear()
    if mode == "oidc":
        st.logout()


def sidebar_badge(actor: Actor) -> None:
    """The signed-in user and role in the sidebar, a sign-out button, and the single-user banner."""
    mode = st.session_state.get(MODE_KEY)
    with st.sidebar:
        color = ROLE_COLORS.get(actor.role, "gray")
        st.markdown(f"**{actor.user}** :{color}-badge[{actor.role}]")
        if mode == "single-user":
            st.caption("Single-user mode: no accounts, you act as admin, only this machine is served.")
        elif st.button("Sign out", key="wb_sign_out", icon=":material/logout:"):
            sign_out()
            st.rerun()


def single_user_banner() -> None:
    """The banner that tells the user the workspace runs without accounts."""
    if st.session_state.get(MODE_KEY) == "single-user":
        st.warning("Single-user mode: this workspace has no accounts, so you act as the OS user with full rights "
                   "and the app answers only this machine. Create an admin account "
                   "(`workbench user add NAME --role admin`) to require sign-in.", icon="👤")
