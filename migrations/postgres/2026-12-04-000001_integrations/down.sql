DROP TABLE consents;
DROP TABLE client_assertions;
DROP TABLE integrations;
