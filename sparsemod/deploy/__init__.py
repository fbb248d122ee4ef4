"""Deployment: export a trained network to a microcontroller runtime and check it there.

See :mod:`sparsemod.deploy.base` for the protocol every runtime module follows.
"""
