from kiki_bot.cli import main

main()
