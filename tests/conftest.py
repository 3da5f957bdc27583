"""Shared fixtures for all tests."""
