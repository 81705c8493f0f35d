/* avk_luhn: see luhn.h. */
#include "common/util/luhn.h"

int avk_luhn(const char *digits, size_t n)
{
        int sum = 0;

        if (digits == NULL)
                return -1;
        for (size_t i = 0; i < n; i++) {
                int d;

                if (digits[i] < '0' || digits[i] > '9')
                        return -1;
                d = digits[i] - '0';
                if (i % 2 == 0) {
                        d *= 2;
                        if (d > 9)
                                d -= 9; /* the sum of the two digits of 10..18 */
                }
                sum += d;
        }
        return (10 - sum % 10) % 10;
}
