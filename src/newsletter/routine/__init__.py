"""The daily routine, which the service runs by itself: scheduled sends (`schedules`, fired by
`scheduler`, in the venue's wall time: `timing`), the campaigns its senders carry on
(`carry`), session series and how readers take them (`series`), welcome, catch-up and digest
mail (`welcome`), and the jobs time asks for (`housekeeping`)."""
