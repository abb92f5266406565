DROP TABLE sign_in_networks;
