"""The pure core: decisions over data already read. No I/O, and nothing from PyGithub, huggingface_hub, mlx,
sqlite3 or subprocess, so every rule here is tested without a server or a file (DESIGN.md section 5)."""
