"""Post-processing (ppid 17): stamp registered IDs into a science job's products."""
