"""The four steps of a bulk run and the operator that runs them unattended.

Selecting work from the operations database, writing job specs, submitting to the engine, waiting and
registering. No image maths here.
"""
