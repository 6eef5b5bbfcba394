"""Screens pushed over the main one: help, profiles, settings, confirmations."""
