-- badkey.lua - a profile with a misspelt key (tests only).
name = "badkey"
amplifier = { gain = 1e5, gbw = 1e9, slewrate = 1e9 }
