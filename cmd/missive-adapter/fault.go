package main

import "github.com/missive-protocol/missive/internal/faults"

func faultName(s string) faults.Fault { return faults.Fault(s) }
