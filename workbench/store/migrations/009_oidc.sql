-- OIDC sign-in (issue 5, "Accounts and roles": st.login where an OIDC provider is configured).

-- The identity provider's name for the person an account belongs to: an e-mail address (stored lower-case) or
-- the provider's `sub` claim. NULL: the account signs in with its local password only. Unique among accounts
-- (enforced by workbench.cases.accounts; no index, so later migrations can still alter this table).
ALTER TABLE accounts ADD COLUMN identity VARCHAR;
