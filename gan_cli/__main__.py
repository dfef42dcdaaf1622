from gan_cli.cli import main

main()
