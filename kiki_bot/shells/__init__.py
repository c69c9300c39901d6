"""The only doors to the outside: GitHub (PyGithub), the Hub (huggingface_hub), training (mlx-lm), and the
effects that behaviours call so that --dry-run can print instead of act."""
