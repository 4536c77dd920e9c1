"""Tests-wide setup.

pytest puts the folder of a root conftest on ``sys.path``, so every test folder can
import the tests-wide support modules beside this file (``testdata``).
"""
