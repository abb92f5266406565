-- Networks each account has signed in from (a hash of the email and the network, never the
-- address itself): a known network is not held back by other people's failed sign-ins.
CREATE TABLE sign_in_networks (
    key TEXT PRIMARY KEY NOT NULL,
    last_success_at TIMESTAMP NOT NULL
);
CREATE INDEX sign_in_networks_last_success_at ON sign_in_networks (last_success_at);
