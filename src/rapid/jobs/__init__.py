"""What passes between the operator and a job: the job spec in, the product manifest out."""
