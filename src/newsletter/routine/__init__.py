"""The daily routine: scheduled sends (`schedules`, fired by `scheduler`), and the wall-clock
arithmetic they rest on (`timing`)."""
