package main

import "github.com/missive-protocol/missive/ref/keys"

// publicKey returns the X25519 public key of a private key.
func publicKey(priv []byte) ([]byte, error) {
	k, err := keys.NewPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return k.Public().Bytes(), nil
}
